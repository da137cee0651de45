using System.Buffers;
using System.Text;
using Passage.Http;
using Passage.Tunnel;

namespace Passage.Client.HttpProxy;

/// <summary>How a forwarded message's body is delimited (RFC 9112 §6.3).</summary>
internal enum BodyFraming
{
    /// <summary>No body: neither Content-Length nor Transfer-Encoding.</summary>
    None,

    /// <summary>Exactly Content-Length bytes.</summary>
    Length,

    /// <summary>Chunked, through its last chunk and trailer section.</summary>
    Chunked,

    /// <summary>Until the connection ends: an answer with neither Content-Length nor chunked (RFC 9112 §6.3).</summary>
    UntilClose,
}

/// <summary>
/// One message body as it passes through the proxy byte for byte, framed as its head says: where it ends, so that what
/// follows it is not taken for part of it, and its chunked framing checked on the way.
/// </summary>
/// <remarks>
/// Chunked framing is checked as it passes (RFC 9112 §7.1): a size line of hexadecimal digits and extensions, CRLF
/// after each chunk, trailer fields that are field lines; a bare CR or LF anywhere in the framing, or a line over
/// 4 KiB, is an <see cref="InvalidDataException"/>. The trailer section is the one part not passed on as it comes: each
/// of its lines is held until it is whole, then dropped when its field is one no trailer section may carry
/// (<see cref="TrailerFields"/>, RFC 9110 §6.5.1: Content-Length, Host, Set-Cookie, ...) or one <c>forwardsTrailer</c>
/// says does not go on (the framing stays whole: a trailer section is any number of field lines and an empty line),
/// else passed on unchanged. This proxy's departure: the fields its heads keep back (<c>forwardsTrailer</c>: its
/// credentials, those the head's Connection names) stay behind in a trailer section too.
/// With <c>unchunk</c>, only the chunks' data passes, for a recipient that cannot read chunked framing (HTTP/1.0,
/// RFC 9112 §7): the framing is checked and taken off, the trailer section dropped whole.
/// </remarks>
/// <param name="framing">How the body is delimited.</param>
/// <param name="length">The body's length, for <see cref="BodyFraming.Length"/>.</param>
/// <param name="forwardsTrailer">Whether a trailer field of this name goes on, of those a trailer section may carry; null for every one.</param>
/// <param name="unchunk">Whether a chunked body passes as its data alone.</param>
internal sealed class FramedBody(BodyFraming framing, long length, Func<string, bool>? forwardsTrailer = null, bool unchunk = false)
{
    private const int MaxLine = 4 * 1024;

    private readonly StringBuilder _line = new();
    private readonly ArrayBufferWriter<byte> _held = new();
    private int _heldTaken;
    private long _remaining = framing == BodyFraming.Length ? length : 0;
    private ChunkState _state = ChunkState.SizeLine;
    private bool _sawCr;

    private enum ChunkState
    {
        SizeLine,
        Data,
        DataEnd,
        TrailerLine,
    }

    /// <summary>True once the whole body has been taken (what <see cref="TakeHeld"/> gives may still be to pass on).</summary>
    public bool Done { get; private set; } = framing == BodyFraming.None || (framing == BodyFraming.Length && length == 0);

    /// <summary>True while trailer lines that were held until whole are still to pass on: before anything taken after them.</summary>
    public bool HasHeld => _heldTaken < _held.WrittenCount;

    /// <summary>Moves held trailer bytes into <paramref name="destination"/>: how many.</summary>
    public int TakeHeld(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _held.WrittenCount - _heldTaken);
        _held.WrittenSpan.Slice(_heldTaken, n).CopyTo(destination);
        _heldTaken += n;
        if (_heldTaken == _held.WrittenCount)
        {
            _held.ResetWrittenCount();
            _heldTaken = 0;
        }
        return n;
    }

    /// <summary>
    /// Takes the next bytes of the message: what passes on now is moved to the front of <paramref name="bytes"/>, and its
    /// length returned; what comes after the body's end is no part of it. Trailer lines are held (see <see cref="TakeHeld"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">The chunked framing is broken.</exception>
    public int Take(Span<byte> bytes)
    {
        if (framing == BodyFraming.Length)
        {
            var n = (int)Math.Min(bytes.Length, _remaining);
            _remaining -= n;
            Done = _remaining == 0;
            return n;
        }
        if (framing != BodyFraming.Chunked)
        {
            return framing == BodyFraming.UntilClose ? bytes.Length : 0;
        }
        var at = 0;
        var kept = 0;
        while (at < bytes.Length && !Done)
        {
            if (_state == ChunkState.Data)
            {
                var n = (int)Math.Min(bytes.Length - at, _remaining);
                bytes.Slice(at, n).CopyTo(bytes[kept..]);
                at += n;
                kept += n;
                _remaining -= n;
                if (_remaining == 0)
                {
                    _state = ChunkState.DataEnd;
                }
                continue;
            }
            var b = bytes[at++];
            if (_state != ChunkState.TrailerLine && !unchunk)
            {
                bytes[kept++] = b;
            }
            if (LineEnded(b) is not { } line)
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
                        if (!unchunk)
                        {
                            Hold("");
                        }
                        Done = true;
                    }
                    else if (FieldSyntax.ParseLine(line) is not { } field)
                    {
                        throw new InvalidDataException("a trailer field is malformed");
                    }
                    else if (!unchunk && TrailerFields.MayCarry(field.Key) && (forwardsTrailer?.Invoke(field.Key) ?? true))
                    {
                        Hold(line);
                    }
                    break;
            }
        }
        return kept;
    }

    /// <summary>
    /// The message's stream ended after what was taken. A chunked body not yet whole is incomplete (RFC 9112 §8); passed on
    /// with its framing, its recipient sees that, but as its data alone (<c>unchunk</c>), ended by the close, it would
    /// read as whole: an <see cref="InvalidDataException"/> then, so that the recipient's connection is reset, not closed.
    /// </summary>
    /// <exception cref="InvalidDataException">The body passes as its data alone and was cut short.</exception>
    public void Ended()
    {
        if (unchunk && framing == BodyFraming.Chunked && !Done)
        {
            throw new InvalidDataException("the origin closed inside its chunked body");
        }
    }

    /// <summary>Holds a trailer line, as it came (Latin-1: one character per byte), and its CRLF.</summary>
    private void Hold(string line)
    {
        var span = _held.GetSpan(line.Length + 2);
        Encoding.Latin1.GetBytes(line, span);
        span[line.Length] = (byte)'\r';
        span[line.Length + 1] = (byte)'\n';
        _held.Advance(line.Length + 2);
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
