namespace Passage.Transport;

/// <summary>
/// A <see cref="Stream"/> over a <see cref="SocketConnection"/>, for what needs a stream on a plain
/// socket (an <c>SslStream</c> terminating TLS, Kestrel's HTTP/2): the socket keeps waiting through
/// <see cref="SocketReadiness"/> instead of taking the runtime's per-socket async state, as a
/// <c>NetworkStream</c> would give it. Owns the connection. Asynchronous only: a synchronous read
/// or write would block a thread that, with inline completions, may be the one to wake it.
/// </summary>
internal sealed class SocketStream(SocketConnection connection) : Stream
{
    /// <summary>The connection underneath: abort it (not the socket) to end whatever waits on it.</summary>
    public SocketConnection Connection => connection;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        connection.ReadAsync(buffer, cancellationToken);

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        connection.ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        connection.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        connection.WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override void Flush()
    {
        // Nothing is buffered here.
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("SocketStream is asynchronous only.");

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("SocketStream is asynchronous only.");

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override ValueTask DisposeAsync() => connection.DisposeAsync();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            // Completes at once: a SocketConnection's disposal does not wait.
            connection.DisposeAsync().GetAwaiter().GetResult();
        }
        base.Dispose(disposing);
    }
}
