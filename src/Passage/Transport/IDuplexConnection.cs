using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>
/// One end of a relayed connection, as the <see cref="BytePump"/> sees it: something to read from,
/// write to, half-close and abort. Implemented over a plain <see cref="System.Net.Sockets.Socket"/>
/// (<see cref="SocketConnection"/>) and over any <see cref="Stream"/> (<see cref="StreamConnection"/>:
/// TLS, an HTTP/2 tunnel stream).
/// </summary>
public interface IDuplexConnection : IAsyncDisposable
{
    /// <summary>
    /// The plain socket underneath when bytes go straight to it (no TLS or framing in between);
    /// null otherwise. When both ends of a pump have one, a zero-copy path may be used.
    /// </summary>
    Socket? Socket { get; }

    /// <summary>
    /// Reads into <paramref name="buffer"/>. Returns 0 at end of stream. A zero-length buffer waits
    /// until data (or end of stream) is available without consuming anything, so an idle
    /// connection needs no buffer.
    /// </summary>
    ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Writes all of <paramref name="data"/>.</summary>
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>
    /// Signals end of stream to the peer while reads continue (a TCP half-close: FIN).
    /// Idempotent.
    /// </summary>
    ValueTask CompleteWritesAsync(CancellationToken cancellationToken);

    /// <summary>Closes at once, discarding unsent data (a TCP reset where possible). Idempotent.</summary>
    void Abort();
}
