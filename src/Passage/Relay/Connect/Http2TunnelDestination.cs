using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// The destination's side of an HTTP/2 tunnel as the pump sees it: the connection to the destination, which an abort
/// resets, unless the client had ended its side (END_STREAM, passed on to the destination as a half-close) and then
/// left (<see cref="ClientLeft"/>): then the abort leaves it whole, and its disposal closes it as
/// <see cref="LingeringClose"/> does, what the destination still sends read and dropped for a short while.
/// </summary>
/// <remarks>
/// A .NET <c>HttpClient</c> application that has sent its bytes and END_STREAM, then disposes the tunnel's stream before
/// it read the relay's end, sends RST_STREAM (CANCEL). The pump stops at that (the request's token) and aborts both its
/// sides: a reset to a destination that had not read yet lost the bytes still queued for it, which a TCP reset drops.
/// The client asked for no more than the end of the tunnel, which the destination had been told already. A client that
/// resets its stream before END_STREAM abandons the tunnel midway: the destination is reset, as a close would tell it
/// the bytes were whole. The bytes read and dropped are counted nowhere: the pump counts only what it delivered.
/// </remarks>
internal sealed class Http2TunnelDestination(SocketConnection destination, TimeProvider time) : IDuplexConnection, IWrittenCount, IEndOfStreamCheck
{
    /// <summary>Cancels the pump's wait for the destination's bytes, where an abort that leaves it whole does not.</summary>
    private readonly CancellationTokenSource _reads = new();
    private int _writesCompleted;
    private int _clientLeft;
    private int _lingering;
    private int _disposed;

    /// <summary>
    /// None: the pump would splice straight between sockets, around this wrapper, and the abort that leaves the
    /// destination whole would not end its wait. (The HTTP/2 door's other end is a stream, so it copies anyway.)
    /// </summary>
    public Socket? Socket => null;

    /// <inheritdoc />
    public long Written => destination.Written;

    /// <inheritdoc />
    public bool EndOfStreamWasFailure() => destination.EndOfStreamWasFailure();

    /// <summary>
    /// The client ended the tunnel's stream (reset it, or its connection went) before the relay did: true when the client's
    /// END_STREAM had been (or was being) passed on to the destination, which an abort from now on then leaves whole, to
    /// be closed so at disposal (the caller keeps the tunnel's slot until then); false when it is to be reset as before.
    /// </summary>
    public bool ClientLeft()
    {
        if (Volatile.Read(ref _writesCompleted) == 0)
        {
            return false;
        }
        Volatile.Write(ref _clientLeft, 1);
        return true;
    }

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        destination.ReadAsync(buffer, cancellationToken.CanBeCanceled ? cancellationToken : _reads.Token);

    /// <inheritdoc />
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => destination.WriteAsync(data, cancellationToken);

    /// <inheritdoc />
    public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        // Marked before the half-close, not after: the destination may read its end, and the client reset the stream,
        // before this method's continuation would run, and a destination told of its end must not be reset then. A
        // half-close that fails meanwhile leaves the closing at disposal a broken connection, which it only disposes.
        Volatile.Write(ref _writesCompleted, 1);
        await destination.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Abort()
    {
        if (Volatile.Read(ref _clientLeft) == 1)
        {
            if (Interlocked.Exchange(ref _lingering, 1) == 0)
            {
                try
                {
                    // Ends the pump's wait on the destination, which stays open, its end on its way, until disposed.
                    _reads.Cancel();
                }
                catch (ObjectDisposedException)
                {
                    // The pump had ended already: nothing waits.
                }
            }
            return;
        }
        destination.Abort();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _reads.Dispose();
        if (Volatile.Read(ref _lingering) == 1)
        {
            await LingeringClose.CloseAsync(destination, ReadOnlyMemory<byte>.Empty, time).ConfigureAwait(false);
        }
        else
        {
            await destination.DisposeAsync().ConfigureAwait(false);
        }
    }
}
