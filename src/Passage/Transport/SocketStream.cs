using System.Buffers;
using static Passage.Transport.LinuxSplice;

namespace Passage.Transport;

/// <summary>
/// A <see cref="Stream"/> over a <see cref="SocketConnection"/>, for what needs a stream on a plain
/// socket (an <c>SslStream</c> terminating TLS, Kestrel's HTTP/2): the socket keeps waiting through
/// <see cref="SocketReadiness"/> instead of taking the runtime's per-socket async state, as a
/// <c>NetworkStream</c> would give it. Owns the connection. Asynchronous only: a synchronous read
/// or write would block a thread that, with inline completions, may be the one to wake it.
/// </summary>
/// <remarks>
/// Reads ahead: a read smaller than <see cref="ReadAheadSize"/> takes what the socket has, up to that,
/// and keeps the rest for the reads that follow. <c>SslStream</c> asks for one TLS record at a time (a
/// little over 16 KiB), and without this paid a receive for every record and a look (a peek) at the
/// socket between records; with it, a stream of full records costs a receive per four. The buffer is
/// pooled and held only while it has bytes: never while waiting, so an idle stream holds none.
/// </remarks>
internal sealed class SocketStream(SocketConnection connection) : Stream
{
    /// <summary>How much one receive may read ahead of what the caller asked for.</summary>
    internal const int ReadAheadSize = 64 * 1024;

    private byte[]? _ahead;
    private int _aheadStart;
    private int _aheadEnd;

    /// <summary>Whether bytes read ahead are held (and with them a pooled buffer).</summary>
    internal bool HoldsReadAhead => _ahead is not null;

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

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_aheadEnd > _aheadStart)
        {
            // Bytes read ahead: a zero-byte read is answered by their being there.
            return new ValueTask<int>(buffer.IsEmpty ? 0 : TakeAhead(buffer.Span));
        }
        if (buffer.IsEmpty || buffer.Length >= ReadAheadSize || cancellationToken.IsCancellationRequested || !connection.IsNonBlocking)
        {
            return connection.ReadAsync(buffer, cancellationToken);
        }
        var read = ReadAhead(buffer.Span);
        return read >= 0 ? new ValueTask<int>((int)read)
            : read == -EAGAIN ? ReadAheadWhenReadyAsync(buffer, cancellationToken)
            : ValueTask.FromException<int>(ToSocketException((int)-read));
    }

    // Nothing there: wait without a buffer of this stream's (the caller's is the caller's), then read again.
    private async ValueTask<int> ReadAheadWhenReadyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await connection.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            var read = ReadAhead(buffer.Span);
            if (read >= 0)
            {
                return (int)read;
            }
            if (read != -EAGAIN)
            {
                throw ToSocketException((int)-read);
            }
        }
    }

    /// <summary>One receive of up to <see cref="ReadAheadSize"/>, without waiting: bytes given to <paramref name="destination"/>, 0 at end of stream, or the negated errno.</summary>
    private nint ReadAhead(Span<byte> destination)
    {
        var ahead = ArrayPool<byte>.Shared.Rent(ReadAheadSize);
        var read = connection.ReceiveNow(ahead.AsSpan(0, ReadAheadSize));
        if (read <= 0)
        {
            ArrayPool<byte>.Shared.Return(ahead);
            return read;
        }
        _ahead = ahead;
        _aheadStart = 0;
        _aheadEnd = (int)read;
        return TakeAhead(destination);
    }

    private int TakeAhead(Span<byte> destination)
    {
        var count = Math.Min(destination.Length, _aheadEnd - _aheadStart);
        _ahead.AsSpan(_aheadStart, count).CopyTo(destination);
        _aheadStart += count;
        if (_aheadStart == _aheadEnd)
        {
            // Given back as soon as it is empty: nothing is held between bursts.
            ArrayPool<byte>.Shared.Return(_ahead!);
            _ahead = null;
            _aheadStart = _aheadEnd = 0;
        }
        return count;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

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
