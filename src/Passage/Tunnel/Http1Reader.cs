using System.Buffers;
using System.Text;

namespace Passage.Tunnel;

/// <summary>
/// Buffered reading of an HTTP/1.1 byte stream: lines (a head, a chunk size, a trailer field) and body bytes.
/// Body reads take what is buffered first and then go to the stream directly, so large bodies are not copied
/// through the buffer.
/// </summary>
/// <remarks>
/// Lines must end in CRLF: a bare LF or CR is refused rather than tolerated (RFC 9112 §2.2 allows a recipient
/// to accept a bare LF, but two parsers that disagree on line ends are how requests get smuggled).
/// <para>The buffer comes from the shared pool and goes back to it exactly once, and never while a read uses it:
/// the reader may be disposed on another thread while a read waits for bytes (the server end disposes a request's
/// reader when the answer is done, while the body's copy may still be reading). Disposal then leaves the buffer to
/// that read, which returns it when it ends; otherwise the bytes it brings in would land in an array the pool has
/// handed to another request.</para>
/// </remarks>
internal sealed class Http1Reader : IDisposable
{
    private const int BufferSize = 8 * 1024;

    /// <summary><see cref="_state"/>: a read is using the buffer.</summary>
    private const int Reading = 1;

    /// <summary><see cref="_state"/>: the reader has been disposed; whoever sees this last returns the buffer.</summary>
    private const int Disposed = 2;

    private readonly Stream _inner;
    private byte[]? _buffer;
    private int _start;
    private int _end;
    private int _state;

    public Http1Reader(Stream inner) => _inner = inner;

    /// <summary>The stream read from.</summary>
    public Stream Inner => _inner;

    /// <summary>The length of the array held from the pool, 0 when none: what an idle reader costs.</summary>
    internal int HeldBufferLength => Volatile.Read(ref _buffer)?.Length ?? 0;

    /// <summary>
    /// Reads one line, without its CRLF, as Latin-1 text (RFC 9110 §5.5: field values are octets; obs-text
    /// survives as the same code points). Null when the stream ends before the line's first byte.
    /// </summary>
    /// <param name="maxLength">The longest line taken.</param>
    /// <param name="cancellationToken">Cancels the wait for bytes.</param>
    /// <param name="tooLong">
    /// What is thrown for a line longer than <paramref name="maxLength"/>, when a line past a bound means something other
    /// than a malformed one (an <see cref="InvalidDataException"/> when null).
    /// </param>
    /// <exception cref="InvalidDataException">The line is longer than <paramref name="maxLength"/> (without <paramref name="tooLong"/>), holds a bare CR or LF, or the stream ends inside it.</exception>
    /// <exception cref="ObjectDisposedException">The reader has been disposed.</exception>
    public async ValueTask<string?> ReadLineAsync(int maxLength, CancellationToken cancellationToken, Func<Exception>? tooLong = null)
    {
        Enter();
        try
        {
            return await ReadLineCoreAsync(maxLength, tooLong, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Exit();
        }
    }

    private async ValueTask<string?> ReadLineCoreAsync(int maxLength, Func<Exception>? tooLong, CancellationToken cancellationToken)
    {
        var scanned = 0;
        while (true)
        {
            if (_buffer is not null)
            {
                var pending = _buffer.AsSpan(_start, _end - _start);
                var lf = pending[scanned..].IndexOf((byte)'\n');
                if (lf >= 0)
                {
                    lf += scanned;
                    if (lf == 0 || pending[lf - 1] != (byte)'\r')
                    {
                        throw new InvalidDataException("a line ends in a bare LF");
                    }
                    var line = pending[..(lf - 1)];
                    if (line.Length > maxLength)
                    {
                        throw tooLong?.Invoke() ?? new InvalidDataException($"a line is longer than {maxLength} bytes");
                    }
                    if (line.Contains((byte)'\r'))
                    {
                        throw new InvalidDataException("a line holds a bare CR");
                    }
                    var text = Encoding.Latin1.GetString(line);
                    _start += lf + 1;
                    ReleaseIfEmpty();
                    return text;
                }
                scanned = pending.Length;
                if (scanned > maxLength + 1)
                {
                    throw tooLong?.Invoke() ?? new InvalidDataException($"a line is longer than {maxLength} bytes");
                }
            }
            if (_buffer is not null)
            {
                await WaitForMoreAsync(cancellationToken).ConfigureAwait(false);
            }
            if (await FillAsync(cancellationToken).ConfigureAwait(false) == 0)
            {
                if (_buffer is null)
                {
                    return null;
                }
                throw new InvalidDataException("the stream ended inside a line");
            }
        }
    }

    /// <summary>
    /// Reads body bytes: buffered ones first, else straight from the stream. A zero-length
    /// <paramref name="destination"/> waits until data is available without holding a buffer.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The reader has been disposed.</exception>
    public ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken)
    {
        Enter();
        try
        {
            if (_buffer is null)
            {
                // The read goes into the caller's memory, not the buffer: it need not hold the buffer's ownership.
                return _inner.ReadAsync(destination, cancellationToken);
            }
            var n = Math.Min(destination.Length, _end - _start);
            _buffer.AsSpan(_start, n).CopyTo(destination.Span);
            _start += n;
            ReleaseIfEmpty();
            return ValueTask.FromResult(n);
        }
        finally
        {
            Exit();
        }
    }

    /// <summary>Returns the buffer to the pool now or, when a read is using it, when that read ends.</summary>
    public void Dispose()
    {
        if ((Interlocked.Or(ref _state, Disposed) & Reading) == 0)
        {
            Release();
        }
    }

    /// <summary>Marks a read as using the buffer (reads never overlap: one caller reads at a time).</summary>
    private void Enter()
    {
        if ((Interlocked.Or(ref _state, Reading) & Disposed) != 0)
        {
            Exit();
            throw new ObjectDisposedException(nameof(Http1Reader));
        }
    }

    /// <summary>Ends a read; if the reader was disposed meanwhile, the buffer is returned here.</summary>
    private void Exit()
    {
        if ((Interlocked.And(ref _state, ~Reading) & Disposed) != 0)
        {
            Release();
        }
    }

    /// <summary>The one way the buffer goes back to the pool: whoever takes it from the field returns it.</summary>
    private void Release()
    {
        if (Interlocked.Exchange(ref _buffer, null) is { } buffer)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        _start = _end = 0;
    }

    /// <summary>
    /// Waits for more of a line whose first bytes are buffered (a zero-byte read of the stream), holding them in an
    /// array of their size rather than the whole buffer: a peer that sends part of a line and then nothing (a chunk
    /// size without its CRLF, on a body that may stay open for as long as the connection) pins only what it sent.
    /// </summary>
    private async ValueTask WaitForMoreAsync(CancellationToken cancellationToken)
    {
        var pending = _end - _start;
        if (pending <= _buffer!.Length / 2)
        {
            MoveTo(ArrayPool<byte>.Shared.Rent(pending));
        }
        await _inner.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Reads more into the buffer (compacting or growing it); 0 at the end of the stream.</summary>
    private async ValueTask<int> FillAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf((Volatile.Read(ref _state) & Disposed) != 0, this);
        if (_buffer is null)
        {
            _buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
            _start = _end = 0;
        }
        else if (_buffer.Length < BufferSize || (_end == _buffer.Length && _start == 0))
        {
            // A line waited for in a small array, or one that fills the buffer: a larger one.
            MoveTo(ArrayPool<byte>.Shared.Rent(Math.Max(BufferSize, _buffer.Length * 2)));
        }
        else if (_end == _buffer.Length)
        {
            var pending = _end - _start;
            _buffer.AsSpan(_start, pending).CopyTo(_buffer);
            _start = 0;
            _end = pending;
        }
        var read = await _inner.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
        _end += read;
        ReleaseIfEmpty();
        return read;
    }

    /// <summary>Moves the buffered bytes to the start of <paramref name="array"/>, which becomes the buffer; the old one goes back to the pool.</summary>
    private void MoveTo(byte[] array)
    {
        var pending = _end - _start;
        _buffer.AsSpan(_start, pending).CopyTo(array);
        ArrayPool<byte>.Shared.Return(_buffer!);
        _buffer = array;
        _start = 0;
        _end = pending;
    }

    private void ReleaseIfEmpty()
    {
        if (_buffer is not null && _start == _end)
        {
            Release();
        }
    }
}
