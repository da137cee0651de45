using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The pump's scenarios on the zero-copy path (splice(2) where both ends are plain sockets on Linux),
/// plus which path a run picks.
/// </summary>
public sealed class BytePumpSplicePathTests : BytePumpTests
{
    private protected override bool ZeroCopy => true;

    [Fact]
    public async Task A_stream_end_takes_the_copy_path_both_ways_and_still_relays()
    {
        // The upstream end is a stream: bytes pass through its own processing, so nothing is spliced.
        var upstream = new StreamConnection(new NetworkStream(_relayOut, ownsSocket: true));
        var pump = BytePump.RunAsync(new SocketConnection(_relayIn), upstream);
        var up = RandomNumberGenerator.GetBytes(200_000);
        await Loopback.SendAllAsync(_app, up);
        _app.Shutdown(SocketShutdown.Send);
        Assert.Equal(up, await Loopback.ReadToEndAsync(_server));
        await Loopback.SendAllAsync(_server, "bye"u8.ToArray());
        _server.Shutdown(SocketShutdown.Send);
        Assert.Equal("bye"u8.ToArray(), await Loopback.ReadToEndAsync(_app));

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(PumpPath.Copy, result.ClientToUpstreamPath);
        Assert.Equal(PumpPath.Copy, result.UpstreamToClientPath);
    }

    [Fact]
    public async Task Two_plain_sockets_splice_by_default_on_linux()
    {
        var pump = BytePump.RunAsync(new SocketConnection(_relayIn), new SocketConnection(_relayOut));
        await Loopback.SendAllAsync(_app, "ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(_server, limit: 4));
        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);

        var result = await pump.WaitAsync(Timeouts.Default);
        var expected = OperatingSystem.IsLinux() ? PumpPath.Splice : PumpPath.Copy;
        Assert.Equal(expected, result.ClientToUpstreamPath);
        Assert.Equal(expected, result.UpstreamToClientPath);
        Assert.Equal(4, result.ClientToUpstreamBytes);
    }

    [Theory]
    [InlineData(LinuxSplice.ECONNRESET, SocketError.ConnectionReset)]
    [InlineData(LinuxSplice.EPIPE, SocketError.Shutdown)]
    [InlineData(LinuxSplice.ETIMEDOUT, SocketError.TimedOut)]
    [InlineData(LinuxSplice.ENOTCONN, SocketError.NotConnected)]
    [InlineData(9999, SocketError.SocketError)]
    public void Errno_maps_to_the_socket_error_the_runtime_reports(int errno, SocketError expected) =>
        Assert.Equal(expected, LinuxSplice.ToSocketException(errno).SocketErrorCode);
}
