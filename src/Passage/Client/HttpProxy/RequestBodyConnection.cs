using System.Buffers;
using System.Net.Sockets;
using System.Text;
using Passage.Transport;
using Passage.Tunnel;

namespace Passage.Client.HttpProxy;

/// <summary>How a forwarded request's body is delimited (RFC 9112 §6.3).</summary>
internal enum BodyFraming
{
    /// <summary>No body: neither Content-Length nor Transfer-Encoding.</summary>
    None,

    /// <summary>Exactly Content-Length bytes.</summary>
    Length,

    /// <summary>Chunked, through its last chunk and trailer section.</summary>
    Chunked,
}

/// <summary>
/// The application's side of one plain <c>http://</c> request forwarded through a tunnel (one request per tunnel):
/// reads yield the request's body exactly as framed, passed on byte for byte, and then nothing more. Whatever the
/// application sends after it (a pipelined request, perhaps for another host, with that host's cookies) is read and
/// dropped until the application closes, never sent to this request's origin. The origin's answer, written here,
/// passes straight through.
/// </summary>
/// <remarks>
/// Chunked framing is checked as it passes (RFC 9112 §7.1): a size line of hexadecimal digits and extensions, CRLF
/// after each chunk, trailer fields that are field lines; a bare CR or LF anywhere in the framing, or a size line
/// over 4 KiB, is an <see cref="InvalidDataException"/>, which ends the pump. The application's end of stream
/// before the body is whole passes on as end of stream, as it would have before.
/// </remarks>
/// <param name="app">The application's connection.</param>
/// <param name="buffered">Bytes the application sent behind the request head, read already.</param>
/// <param name="framing">How the request's body is delimited.</param>
/// <param name="length">The body's length, for <see cref="BodyFraming.Length"/>.</param>
/// <param name="noAnswer">
/// What the application gets when the origin ends its side without a byte of answer (a 502 with its Proxy-Status), so
/// that it learns why rather than finding the connection closed; empty for nothing.
/// </param>
internal sealed class RequestBodyConnection(
    IDuplexConnection app, ReadOnlyMemory<byte> buffered, BodyFraming framing, long length, ReadOnlyMemory<byte> noAnswer = default) : IDuplexConnection
{
    private const int MaxLine = 4 * 1024;
    private const int DropSize = 4 * 1024;

    private ReadOnlyMemory<byte> _buffered = buffered;
    private long _remaining = framing == BodyFraming.Length ? length : 0;
    private bool _done = framing == BodyFraming.None || (framing == BodyFraming.Length && length == 0);
    private ChunkState _state = ChunkState.SizeLine;
    private readonly StringBuilder _line = new();
    private bool _sawCr;
    private bool _ended;
    private bool _answered;

    private enum ChunkState
    {
        SizeLine,
        Data,
        DataEnd,
        TrailerLine,
    }

    /// <summary>True once the whole body has been read.</summary>
    public bool BodyComplete => _done;

    /// <summary>True when the origin ended its side without answering and the application was sent <c>noAnswer</c> instead.</summary>
    public bool AnsweredForOrigin { get; private set; }

    /// <inheritdoc />
    /// <remarks>Null: the body's end is found by reading, so bytes cannot go by splice.</remarks>
    public Socket? Socket => null;

    /// <inheritdoc />
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_done)
        {
            return await DropUntilEndAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        int read;
        if (!_buffered.IsEmpty)
        {
            if (buffer.IsEmpty)
            {
                return 0;
            }
            read = Math.Min(buffer.Length, _buffered.Length);
            _buffered.Span[..read].CopyTo(buffer.Span);
            _buffered = _buffered[read..];
        }
        else
        {
            read = await app.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // End of stream, or a zero-byte read's readiness.
                return 0;
            }
        }
        // Never 0 while the body is not whole; what follows its end in this read is dropped.
        return Take(buffer.Span[..read]);
    }

    /// <summary>
    /// Past the body: what the application sends is read and dropped until it closes, then end of stream. The pump
    /// waits with a zero-byte read, holding no buffer, and that read does the dropping, with a small buffer of its own
    /// taken only while bytes are there.
    /// </summary>
    private async ValueTask<int> DropUntilEndAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _buffered = default;
        while (!_ended)
        {
            await app.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            var scratch = buffer.IsEmpty ? ArrayPool<byte>.Shared.Rent(DropSize) : null;
            try
            {
                _ended = await app.ReadAsync(scratch is null ? buffer : scratch.AsMemory(0, DropSize), cancellationToken).ConfigureAwait(false) == 0;
            }
            finally
            {
                if (scratch is not null)
                {
                    ArrayPool<byte>.Shared.Return(scratch);
                }
            }
        }
        return 0;
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        _answered |= !data.IsEmpty;
        return app.WriteAsync(data, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>The origin's end: with no answer before it, the application gets <c>noAnswer</c> first.</remarks>
    public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (!_answered && !noAnswer.IsEmpty)
        {
            _answered = true;
            AnsweredForOrigin = true;
            await app.WriteAsync(noAnswer, cancellationToken).ConfigureAwait(false);
        }
        await app.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Abort() => app.Abort();

    /// <inheritdoc />
    /// <remarks>The application's connection stays its owner's to dispose.</remarks>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>How many of <paramref name="bytes"/> (the next ones read) belong to the body; the rest follow it.</summary>
    private int Take(ReadOnlySpan<byte> bytes)
    {
        if (framing == BodyFraming.Length)
        {
            var n = (int)Math.Min(bytes.Length, _remaining);
            _remaining -= n;
            _done = _remaining == 0;
            return n;
        }
        var at = 0;
        while (at < bytes.Length && !_done)
        {
            if (_state == ChunkState.Data)
            {
                var n = (int)Math.Min(bytes.Length - at, _remaining);
                at += n;
                _remaining -= n;
                if (_remaining == 0)
                {
                    _state = ChunkState.DataEnd;
                }
                continue;
            }
            if (LineEnded(bytes[at++]) is not { } line)
            {
                continue;
            }
            switch (_state)
            {
                case ChunkState.SizeLine:
                    _remaining = ChunkedReadStream.ParseSize(line);
                    _state = _remaining == 0 ? ChunkState.TrailerLine : ChunkState.Data;
                    break;
                case ChunkState.DataEnd:
                    if (line.Length != 0)
                    {
                        throw new InvalidDataException("a chunk is not followed by CRLF");
                    }
                    _state = ChunkState.SizeLine;
                    break;
                case ChunkState.TrailerLine:
                    if (line.Length == 0)
                    {
                        _done = true;
                    }
                    else if (FieldSyntax.ParseLine(line) is null)
                    {
                        throw new InvalidDataException("a trailer field is malformed");
                    }
                    break;
            }
        }
        return at;
    }

    /// <summary>Adds one byte of a framing line: the line without its CRLF once it ends, else null.</summary>
    private string? LineEnded(byte b)
    {
        if (_sawCr)
        {
            if (b != (byte)'\n')
            {
                throw new InvalidDataException("a bare CR in the chunked framing");
            }
            _sawCr = false;
            var line = _line.ToString();
            _line.Clear();
            return line;
        }
        if (b == (byte)'\r')
        {
            _sawCr = true;
            return null;
        }
        if (b == (byte)'\n')
        {
            throw new InvalidDataException("a bare LF in the chunked framing");
        }
        if (_line.Length >= MaxLine)
        {
            throw new InvalidDataException($"a line of the chunked framing is longer than {MaxLine} bytes");
        }
        _line.Append((char)b);
        return null;
    }
}
