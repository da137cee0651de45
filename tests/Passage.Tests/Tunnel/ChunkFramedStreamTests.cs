using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Transport;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>The server end's side of an upgraded connection's framing, pumped to a backend as the tunnel does.</summary>
public sealed class ChunkFramedStreamTests
{
    /// <summary>
    /// While the application is quiet, between chunks or inside one, the link is waited on with zero-byte reads only: an
    /// idle upgraded connection holds no buffer, as the relay's pump holds none. The framing used to be read with the
    /// reader's pooled buffer as soon as the pump asked for more: once a chunk's content had gone out, the next size line
    /// was waited for in an 8 KiB buffer, with the pump's 64 KiB one held by the read waiting on it, for as long as the
    /// connection stayed idle.
    /// </summary>
    [Fact]
    public async Task An_idle_upgraded_connection_waits_on_the_link_holding_no_buffer()
    {
        var (application, linkSocket) = await Loopback.ConnectedPairAsync();
        var (backendSocket, backend) = await Loopback.ConnectedPairAsync();
        using var applicationEnd = application;
        using var backendEnd = backend;
        var link = new WaitRecordingStream(new NetworkStream(linkSocket, ownsSocket: true));
        var pump = BytePump.RunAsync(
            new StreamConnection(ChunkFramedStream.UnframingReads(link)),
            new SocketConnection(backendSocket),
            new PumpOptions { ZeroCopy = false });

        // Whole chunks; a chunk whose content comes in two pieces; and a chunk whose framing comes after its content.
        (string Framed, string Content)[] pieces =
        [
            ("5\r\nhello\r\n", "hello"),
            ("a\r\nhello", "hello"),
            ("world\r\n", "world"),
            ("1\r\n!", "!"),
            ("\r\n", ""),
            ("3\r\nend\r\n", "end"),
        ];
        foreach (var (framed, content) in pieces)
        {
            // Counted before the send: the link may be read, and waited on again, before the send returns.
            var waits = link.Waits.Count;
            await Loopback.SendAllAsync(application, Encoding.ASCII.GetBytes(framed));
            if (content.Length > 0)
            {
                Assert.Equal(content, Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(backend, limit: content.Length)));
            }
            else
            {
                // Framing alone: it has been read once the pump waits on the link again.
                await Timeouts.WaitUntilAsync(() => link.Waits.Count > waits, () => string.Join(", ", link.Waits));
            }
        }
        Assert.True(link.Waits.All(size => size == 0), $"buffer sizes of the reads that waited on the link: {string.Join(", ", link.Waits)}");

        // The last chunk still ends the application's direction, as a half-close at the backend.
        await Loopback.SendAllAsync(application, "0\r\n\r\n"u8.ToArray());
        Assert.Empty(await Loopback.ReadToEndAsync(backend));
        backend.Shutdown(SocketShutdown.Send);
        Assert.Empty(await Loopback.ReadToEndAsync(application));
        Assert.Equal(PumpEnd.Completed, (await pump.WaitAsync(Timeouts.Default)).End);
    }

    /// <summary>Passes everything through and records the buffer size of each read that did not complete at once.</summary>
    private sealed class WaitRecordingStream(Stream inner) : DelegatingStream(inner)
    {
        private readonly List<int> _waits = [];

        public IReadOnlyList<int> Waits
        {
            get
            {
                lock (_waits)
                {
                    return _waits.ToArray();
                }
            }
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = Inner.ReadAsync(buffer, cancellationToken);
            if (!read.IsCompleted)
            {
                lock (_waits)
                {
                    _waits.Add(buffer.Length);
                }
            }
            return read;
        }
    }
}
