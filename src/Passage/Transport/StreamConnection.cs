using System.Net.Security;
using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>
/// An <see cref="IDuplexConnection"/> over a <see cref="Stream"/>: TLS (<see cref="SslStream"/>), an
/// HTTP/2 tunnel, or anything else with a byte interface. Owns the stream.
/// </summary>
public sealed class StreamConnection : IDuplexConnection, IEndOfStreamCheck
{
    private readonly Stream _stream;
    private readonly Func<Stream, CancellationToken, ValueTask>? _completeWrites;
    private readonly Action? _abort;
    private readonly Socket? _transport;
    private int _writesCompleted;
    private int _disposed;

    /// <summary>
    /// Wraps <paramref name="stream"/>. <paramref name="transport"/> is the socket the stream runs on,
    /// if any: it is half-closed after a TLS close_notify and reset on abort. <paramref name="completeWrites"/>
    /// replaces the default end-of-stream signal (<see cref="SslStream.ShutdownAsync"/> for TLS, a socket
    /// half-close for a <see cref="NetworkStream"/>). <paramref name="abort"/> replaces the default
    /// teardown (reset the transport socket, dispose the stream).
    /// </summary>
    public StreamConnection(Stream stream, Socket? transport = null, Func<Stream, CancellationToken, ValueTask>? completeWrites = null, Action? abort = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _transport = transport ?? (DelegatingStream.Innermost(stream) as NetworkStream)?.Socket;
        _completeWrites = completeWrites;
        _abort = abort;
    }

    /// <summary>The wrapped stream.</summary>
    public Stream Stream => _stream;

    /// <inheritdoc />
    /// <remarks>Always null: bytes pass through the stream's own processing.</remarks>
    public Socket? Socket => null;

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _stream.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await _stream.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _writesCompleted, 1) != 0)
        {
            return;
        }
        if (_completeWrites is not null)
        {
            await _completeWrites(_stream, cancellationToken).ConfigureAwait(false);
            return;
        }
        // Under a wrapper too: a tunnel whose first bytes came with the relay's answer is a prefix over its TLS stream.
        if (DelegatingStream.Innermost(_stream) is SslStream tls)
        {
            // RFC 8446 §6.1: close_notify ends our direction; the peer may still send.
            await tls.ShutdownAsync().ConfigureAwait(false);
        }
        // Without a transport socket there is no half-close: end of stream is signalled by disposal.
        _transport?.Shutdown(SocketShutdown.Send);
    }

    /// <inheritdoc />
    /// <remarks>
    /// The transport socket's TCP state (<see cref="TcpState.EndWasFailure"/>), unless this object has ended its writes; false
    /// without a transport socket. A TLS stream's end without close_notify comes from its transport's end. The state is read
    /// first, then the flag, as <see cref="SocketConnection.EndOfStreamWasFailure"/> reads them.
    /// </remarks>
    public bool EndOfStreamWasFailure() =>
        _transport is not null && TcpState.EndWasFailure(_transport) && Interlocked.CompareExchange(ref _writesCompleted, 0, 0) == 0;

    /// <inheritdoc />
    public void Abort()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }
        if (_abort is not null)
        {
            _abort();
            return;
        }
        if (_transport is not null)
        {
            SocketReset.Close(_transport);
        }
        _stream.Dispose();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            await _stream.DisposeAsync().ConfigureAwait(false);
        }
    }
}
