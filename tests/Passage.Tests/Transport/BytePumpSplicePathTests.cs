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

    [Fact]
    public async Task A_destination_that_refuses_spliced_pages_is_fed_by_copying_and_nothing_is_lost()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        // splice(2) into a descriptor opened for appending answers EINVAL (fs/splice.c): a real refusal that
        // comes only after the first bytes are already in the pipe.
        SetAppend(_relayOut);
        var refusedBefore = SpliceFallbacks.Of(SpliceFallback.Refused);
        var pump = BytePump.RunAsync(new SocketConnection(_relayIn), new SocketConnection(_relayOut));
        var up = RandomNumberGenerator.GetBytes(3 * 1024 * 1024);
        var sending = Loopback.SendAllAsync(_app, up);
        var received = Loopback.ReadToEndAsync(_server, limit: up.Length);
        await sending.WaitAsync(Timeouts.Default);
        Assert.Equal(up, await received.WaitAsync(Timeouts.Default));
        await Loopback.SendAllAsync(_server, "bye"u8.ToArray());
        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        Assert.Equal("bye"u8.ToArray(), await Loopback.ReadToEndAsync(_app));

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(PumpPath.Copy, result.ClientToUpstreamPath);
        Assert.Equal(PumpPath.Splice, result.UpstreamToClientPath);
        Assert.Equal(up.Length, result.ClientToUpstreamBytes);
        Assert.Equal(3, result.UpstreamToClientBytes);
        // Counted for the relay's /metrics, once: the direction copies from then on.
        Assert.Equal(refusedBefore + 1, SpliceFallbacks.Of(SpliceFallback.Refused));

        // One socket's refusal says nothing about the next connection's: it still splices.
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using (app)
        using (server)
        {
            var next = BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut));
            await Loopback.SendAllAsync(app, "ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(server, limit: 4));
            app.Shutdown(SocketShutdown.Send);
            server.Shutdown(SocketShutdown.Send);
            Assert.Equal(PumpPath.Splice, (await next.WaitAsync(Timeouts.Default)).ClientToUpstreamPath);
        }
    }

    private static void SetAppend(Socket socket)
    {
        const int F_GETFL = 3, F_SETFL = 4, O_APPEND = 0x400;
        var fd = (int)socket.SafeHandle.DangerousGetHandle();
        var flags = Fcntl(fd, F_GETFL, 0);
        Assert.True(flags >= 0 && Fcntl(fd, F_SETFL, flags | O_APPEND) == 0, "fcntl failed");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    private static extern int Fcntl(int fd, int command, int argument);

    [Theory]
    [InlineData(LinuxSplice.ECONNRESET, SocketError.ConnectionReset)]
    [InlineData(LinuxSplice.EPIPE, SocketError.Shutdown)]
    [InlineData(LinuxSplice.ETIMEDOUT, SocketError.TimedOut)]
    [InlineData(LinuxSplice.ENOTCONN, SocketError.NotConnected)]
    [InlineData(9999, SocketError.SocketError)]
    public void Errno_maps_to_the_socket_error_the_runtime_reports(int errno, SocketError expected) =>
        Assert.Equal(expected, LinuxSplice.ToSocketException(errno).SocketErrorCode);
}
