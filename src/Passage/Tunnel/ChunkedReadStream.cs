using System.Globalization;
using Passage.Http;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// Reads a body in HTTP/1.1 chunked framing (RFC 9112 §7.1) and yields its content; the trailer section that
/// ends it is parsed and kept in <see cref="Trailers"/>. Strict: a malformed size, a missing CRLF or a cut-off
/// body is an <see cref="InvalidDataException"/> or <see cref="IOException"/>, never a shorter body.
/// </summary>
internal sealed class ChunkedReadStream : ReadOnlyStream
{
    /// <summary>A chunk-size line with its extensions (which are checked and ignored, RFC 9112 §7.1.1).</summary>
    private const int MaxSizeLine = 4 * 1024;

    private readonly Http1Reader _reader;
    private readonly int _maxTrailerBytes;
    private readonly Action<IReadOnlyList<KeyValuePair<string, string>>>? _onTrailers;
    private readonly List<KeyValuePair<string, string>> _trailers = [];
    private long _remaining;
    private bool _afterChunk;
    private bool _done;

    /// <summary>Reads the framed body from <paramref name="reader"/>.</summary>
    /// <param name="reader">Where the framed bytes come from; owned by the caller.</param>
    /// <param name="maxTrailerBytes">The most the trailer section may hold, field lines together.</param>
    /// <param name="onTrailers">Called once with the trailer fields when the last chunk has been read.</param>
    public ChunkedReadStream(Http1Reader reader, int maxTrailerBytes = 32 * 1024, Action<IReadOnlyList<KeyValuePair<string, string>>>? onTrailers = null)
    {
        _reader = reader;
        _maxTrailerBytes = maxTrailerBytes;
        _onTrailers = onTrailers;
    }

    /// <summary>The trailer fields, in order; complete once a read has returned 0.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Trailers => _trailers;

    /// <summary>
    /// Reads content. A zero-length <paramref name="buffer"/> waits until content (or the end of the body) is there,
    /// without holding a buffer: the framing between chunks is read as it comes, so a body idle between chunks (an
    /// upgraded connection's, for as long as it lasts) holds none either.
    /// </summary>
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (!await NextChunkAsync(cancellationToken).ConfigureAwait(false))
        {
            return 0;
        }
        if (buffer.IsEmpty)
        {
            return await _reader.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        var read = await _reader.ReadAsync(buffer[..(int)Math.Min(buffer.Length, _remaining)], cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            throw new IOException("the chunked body was cut off inside a chunk");
        }
        _remaining -= read;
        return read;
    }

    /// <summary>
    /// Reads the framing up to the next chunk's content, unless inside a chunk: the CRLF that ends a chunk, the next size
    /// line and, after the last chunk, the trailer section. False once the body has ended. Each line is read once its
    /// first bytes are there (a zero-byte read of the reader), so waiting for one holds no buffer.
    /// </summary>
    private async ValueTask<bool> NextChunkAsync(CancellationToken cancellationToken)
    {
        while (_remaining == 0)
        {
            if (_done)
            {
                return false;
            }
            await _reader.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            if (_afterChunk)
            {
                await ExpectEmptyLineAsync(cancellationToken).ConfigureAwait(false);
                _afterChunk = false;
                continue;
            }
            _remaining = await ReadChunkSizeAsync(cancellationToken).ConfigureAwait(false);
            if (_remaining == 0)
            {
                await ReadTrailersAsync(cancellationToken).ConfigureAwait(false);
                _done = true;
                _onTrailers?.Invoke(_trailers);
                return false;
            }
            _afterChunk = true;
        }
        return true;
    }

    /// <summary>Parses <c>chunk-size [ chunk-ext ] CRLF</c>; the size is hexadecimal and must fit in 63 bits.</summary>
    private async ValueTask<long> ReadChunkSizeAsync(CancellationToken cancellationToken)
    {
        var line = await _reader.ReadLineAsync(MaxSizeLine, cancellationToken).ConfigureAwait(false)
            ?? throw new IOException("the chunked body was cut off before its last chunk");
        return ParseSize(line);
    }

    /// <summary>
    /// A chunk-size line without its CRLF: the size (hexadecimal, at most 15 digits, so it fits in 63 bits), then its
    /// extensions, which are not used but must follow RFC 9112 §7.1.1:
    /// <c>*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )</c>, the name a token and the value a token or
    /// a quoted-string. Whitespace may come only where BWS stands: a size followed by blanks and no extension, an
    /// extension without a name ("5;") or one followed by blanks is refused, as a parser that reads such a line
    /// differently is how a request gets smuggled.
    /// </summary>
    /// <exception cref="InvalidDataException">It is not such a line.</exception>
    public static long ParseSize(string line)
    {
        var digits = 0;
        while (digits < line.Length && char.IsAsciiHexDigit(line[digits]))
        {
            digits++;
        }
        var extensions = line.AsSpan(digits);
        if (digits is 0 or > 15 || !(extensions.IsEmpty || extensions.TrimStart(" \t") is [';', ..]))
        {
            throw new InvalidDataException("a chunk size is not a hexadecimal number");
        }
        if (!IsExtensions(extensions))
        {
            throw new InvalidDataException("a chunk extension is malformed");
        }
        return long.Parse(line.AsSpan(0, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
    }

    /// <summary>Whether <paramref name="text"/> is <c>*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )</c>.</summary>
    private static bool IsExtensions(ReadOnlySpan<char> text)
    {
        while (!text.IsEmpty)
        {
            text = text.TrimStart(" \t");
            if (text.IsEmpty || text[0] != ';')
            {
                return false;
            }
            text = text[1..].TrimStart(" \t");
            var name = TokenLength(text);
            if (name == 0)
            {
                return false;
            }
            text = text[name..];
            var afterBlanks = text.TrimStart(" \t");
            if (afterBlanks.IsEmpty || afterBlanks[0] != '=')
            {
                // No value: what follows is the next extension (checked as such), or nothing.
                continue;
            }
            text = afterBlanks[1..].TrimStart(" \t");
            var value = text.IsEmpty ? 0 : text[0] == '"' ? QuotedStringLength(text) : TokenLength(text);
            if (value == 0)
            {
                return false;
            }
            text = text[value..];
        }
        return true;
    }

    /// <summary>How many characters at the start of <paramref name="text"/> are token characters (RFC 9110 §5.6.2).</summary>
    private static int TokenLength(ReadOnlySpan<char> text)
    {
        var length = 0;
        while (length < text.Length && FieldSyntax.IsTokenChar(text[length]))
        {
            length++;
        }
        return length;
    }

    /// <summary>
    /// The length of the quoted-string (RFC 9110 §5.6.4) that <paramref name="text"/> starts with, its quotes included;
    /// 0 when it is not closed or holds a character a quoted-string may not: a control character other than HTAB, DEL,
    /// or one beyond obs-text (the line is read as Latin-1, one character a byte).
    /// </summary>
    private static int QuotedStringLength(ReadOnlySpan<char> text)
    {
        for (var at = 1; at < text.Length; at++)
        {
            var c = text[at];
            if (c == '"')
            {
                return at + 1;
            }
            if (c == '\\' && ++at == text.Length)
            {
                return 0;
            }
            if (!IsQuotedCharacter(text[at]))
            {
                return 0;
            }
        }
        return 0;
    }

    /// <summary>qdtext, or what a quoted-pair may escape: HTAB, SP, VCHAR and obs-text.</summary>
    private static bool IsQuotedCharacter(char c) => c == '\t' || c is >= ' ' and <= '~' || c is >= (char)0x80 and <= (char)0xFF;

    private async ValueTask ExpectEmptyLineAsync(CancellationToken cancellationToken)
    {
        var line = await _reader.ReadLineAsync(0, cancellationToken).ConfigureAwait(false)
            ?? throw new IOException("the chunked body was cut off after a chunk");
        if (line.Length != 0)
        {
            throw new InvalidDataException("a chunk is not followed by CRLF");
        }
    }

    /// <summary>RFC 9112 §7.1.2: <c>*( field-line CRLF ) CRLF</c>, bounded by <c>maxTrailerBytes</c>.</summary>
    private async ValueTask ReadTrailersAsync(CancellationToken cancellationToken)
    {
        var budget = _maxTrailerBytes;
        while (true)
        {
            var line = await _reader.ReadLineAsync(budget, cancellationToken).ConfigureAwait(false)
                ?? throw new IOException("the chunked body was cut off in its trailer section");
            if (line.Length == 0)
            {
                return;
            }
            budget -= line.Length + 2;
            if (budget < 0)
            {
                throw new InvalidDataException($"the trailer section is larger than {_maxTrailerBytes} bytes");
            }
            _trailers.Add(FieldSyntax.ParseLine(line) ?? throw new InvalidDataException("a trailer field is malformed"));
        }
    }
}
