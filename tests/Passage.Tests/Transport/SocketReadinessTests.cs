using System.Net.Sockets;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The relay's own socket readiness (Linux): what it reports. Counts process-wide reports, so these
/// run alone.
/// </summary>
[Collection(PipeAccountingCollection.Name)]
public sealed class SocketReadinessTests
{
    [Fact]
    public async Task Bytes_nobody_reads_yet_are_reported_once_not_over_and_over()
    {
        if (!SocketReadiness.IsAvailable)
        {
            return;
        }
        var (peer, socket) = await Loopback.ConnectedPairAsync();
        using var _ = peer;
        await using var connection = new SocketConnection(socket);
        // A first wait makes the socket watched, for good.
        var wait = connection.ReadAsync(Memory<byte>.Empty, default);
        await Loopback.SendAllAsync(peer, "first"u8.ToArray());
        await wait.AsTask().WaitAsync(Timeouts.Default);

        var before = SocketReadiness.Reports;
        await Loopback.SendAllAsync(peer, "second"u8.ToArray());
        await Task.Delay(300);
        var reports = SocketReadiness.Reports - before;

        // Edge-triggered: the arrival is news once; readable and unread, the socket is not reported again
        // (level-triggered, the readiness thread would spin on it).
        Assert.InRange(reports, 0, 5);
        var buffer = new byte[64];
        var got = 0;
        while (got < 11)
        {
            var n = await connection.ReadAsync(buffer.AsMemory(got), default).AsTask().WaitAsync(Timeouts.Default);
            Assert.NotEqual(0, n);
            got += n;
        }
        Assert.Equal("firstsecond"u8.ToArray(), buffer.AsSpan(0, got).ToArray());
    }

    [Fact]
    public async Task A_write_waiting_on_a_peer_that_half_closed_is_not_reported_over_and_over()
    {
        if (!SocketReadiness.IsAvailable)
        {
            return;
        }
        var (peer, socket) = await Loopback.ConnectedPairAsync();
        using var _ = peer;
        await using var connection = new SocketConnection(socket);
        socket.SendBufferSize = 64 * 1024;
        peer.ReceiveBufferSize = 64 * 1024;
        // The peer is done sending but still reading, slowly: a half-close that stays true.
        peer.Shutdown(SocketShutdown.Send);
        var data = new byte[16 * 1024 * 1024];
        var write = connection.WriteAsync(data, default);
        Assert.False(write.IsCompleted);

        var before = SocketReadiness.Reports;
        await Task.Delay(300);
        var reports = SocketReadiness.Reports - before;

        // Waiting to write, nothing changed: no report at all is due (a busy loop makes millions).
        Assert.InRange(reports, 0, 20);
        Assert.Equal(data.Length, (await Loopback.ReadToEndAsync(peer, limit: data.Length)).Length);
        await write.AsTask().WaitAsync(Timeouts.Default);
    }
}
