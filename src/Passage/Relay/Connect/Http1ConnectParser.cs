using System.Buffers;
using System.Net;
using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// Reads the HTTP/1.1 request head a client sends to a CONNECT relay (RFC 9112 §2-§5, RFC 9110 §9.3.6). A pure
/// function of the bytes buffered so far: call it again with the whole buffer after each read until the status is
/// no longer <see cref="Http1ParseStatus.Incomplete"/>, with a <see cref="Http1ParseProgress"/> so that each call
/// resumes where the last stopped and looks only at the new bytes (the verdict is the same either way). It never
/// throws for any content of the buffer and looks at no more than <see cref="Http1ParseLimits.MaxHeadBytes"/> bytes.
/// </summary>
/// <remarks>
/// <code>
///  buffered ──► window: first MaxHeadBytes bytes (copied to a pooled buffer when spread over segments)
///           ──► empty lines before the request line are skipped (RFC 9112 §2.2)
///           ──► request line: method SP target SP version (§3)
///                 garbage ─► 400 · version not 1.0/1.1 ─► 505 · method not CONNECT ─► 405 · bad target ─► 400
///           ──► header field lines (§5), each judged when its line end arrives;
///                 one more than MaxHeaderCount ─► 431
///           ──► empty line: no Host in HTTP/1.1 ─► 400
///                 else Complete, HeadLength = bytes up to and including its line end
///  no empty line inside the window and more bytes buffered than the window ─► 431
/// </code>
/// Line ends: CRLF, or a bare LF, which RFC 9112 §2.2 lets a recipient accept; tools that type a request by hand
/// send it, and no HTTP parser downstream could read the head differently, since only the tunnel's bytes are
/// forwarded. A CR not followed by LF is refused (§2.2: a bare CR is invalid). Single spaces only inside the
/// request line (§3: the MAY to split on any whitespace is not taken). Decisions are taken as soon as a complete
/// line decides them, and on the last, incomplete line as soon as its bytes can no longer begin a valid line: a
/// method byte no token can hold (a TLS ClientHello sent to a plain-text port answers at once), a bare CR, a
/// folded or badly named field, a control character in a value.
/// </remarks>
internal static partial class Http1ConnectParser
{
    private static ReadOnlySpan<byte> ConnectMethod => "CONNECT"u8;

    private static ReadOnlySpan<byte> HttpName => "HTTP/"u8;

    /// <summary>Examines the bytes a client has sent so far on a connection to a CONNECT relay.</summary>
    /// <param name="buffered">Everything read from the connection so far, from its first byte. Not modified.</param>
    /// <param name="limits">The bounds on the head.</param>
    /// <returns>The verdict; never throws for any content of <paramref name="buffered"/>.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="limits"/> is null (a caller bug).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="limits"/> holds a bound below its minimum (a caller bug).</exception>
    public static Http1ParseResult Parse(ReadOnlySequence<byte> buffered, Http1ParseLimits limits)
    {
        var progress = default(Http1ParseProgress);
        return Parse(buffered, limits, ref progress);
    }

    /// <summary>
    /// As <see cref="Parse(ReadOnlySequence{byte}, Http1ParseLimits)"/>, for a head still arriving: resumes where the
    /// last call with <paramref name="progress"/> stopped, and looks only at the bytes that came since. The verdict is the
    /// same as that of a call from scratch.
    /// </summary>
    /// <param name="buffered">Everything read so far: the bytes of the last call with <paramref name="progress"/>, and maybe more.</param>
    /// <param name="limits">The bounds on the head, the same at every call.</param>
    /// <param name="progress"><c>default</c> at the first call; then as the last call, which said <see cref="Http1ParseStatus.Incomplete"/>, left it.</param>
    public static Http1ParseResult Parse(ReadOnlySequence<byte> buffered, Http1ParseLimits limits, ref Http1ParseProgress progress)
    {
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentOutOfRangeException.ThrowIfLessThan(limits.MaxHeadBytes, 1, nameof(limits));
        ArgumentOutOfRangeException.ThrowIfNegative(limits.MaxHeaderCount, nameof(limits));

        bool overLimit = buffered.Length > limits.MaxHeadBytes;
        var window = overLimit ? buffered.Slice(0, limits.MaxHeadBytes) : buffered;
        if (window.IsSingleSegment)
        {
            return ParseHead(window.FirstSpan, overLimit, limits.MaxHeaderCount, ref progress);
        }

        // A head spread over segments is copied once, bounded by the window; heads are small and pipes usually
        // hand them over in one segment.
        int length = (int)window.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            window.CopyTo(rented);
            return ParseHead(rented.AsSpan(0, length), overLimit, limits.MaxHeaderCount, ref progress);
        }
        finally
        {
            // The head may hold a Proxy-Authorization credential: do not leave it in a shared pool.
            rented.AsSpan(0, length).Clear();
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    private static Http1ParseResult ParseHead(ReadOnlySpan<byte> head, bool overLimit, int maxHeaderCount, ref Http1ParseProgress progress)
    {
        while (true)
        {
            int position = progress.LineStart;
            // The bytes of this line looked at before hold no LF: the search for its end goes on after them.
            int lf = head[(position + progress.Looked)..].IndexOf(Http1Syntax.LF);
            if (lf < 0)
            {
                var partial = head[position..];
                var early = progress.RequestLineRead
                    ? CheckPartialFieldLine(partial, position, progress.HeaderCount, ref progress)
                    : CheckPartialRequestLine(partial, position, ref progress);
                progress.Looked = partial.Length;
                return early ?? Pending(position, overLimit);
            }

            int next = position + progress.Looked + lf + 1;
            var line = head[position..(next - 1)];
            if (!line.IsEmpty && line[^1] == Http1Syntax.CR)
            {
                line = line[..^1];
            }

            // RFC 9112 §2.2: "A sender MUST NOT generate a bare CR ... a recipient of such a bare CR MUST consider that
            // element to be invalid".
            bool bareCarriageReturn = line.Contains(Http1Syntax.CR);
            progress.NextLine(next);
            if (!progress.RequestLineRead)
            {
                if (bareCarriageReturn)
                {
                    return Malformed(position, "bare CR in the request line");
                }

                // RFC 9112 §2.2: "a server that is expecting to receive and parse a request-line SHOULD ignore at least
                // one empty line (CRLF) received prior to the request-line". Any number, within the window.
                if (line.IsEmpty)
                {
                    continue;
                }

                var requestLine = ParseRequestLine(line, next, out progress.Target, out progress.Host, out progress.Port, out progress.Version);
                if (requestLine is { } refused)
                {
                    return refused;
                }

                progress.RequestLineRead = true;
                progress.RequestLineStart = position;
                continue;
            }

            if (bareCarriageReturn)
            {
                return Malformed(position, "bare CR in a header field line");
            }

            if (line.IsEmpty)
            {
                if (HostFieldsProblem(progress.Version == HttpVersion.Version11, progress.HostHeader is null ? 0 : 1) is { } hostProblem)
                {
                    return Malformed(next, hostProblem);
                }

                // Strings are made only now: a head still arriving costs no allocation on each read.
                var hostName = Encoding.ASCII.GetString(head[progress.RequestLineStart..][progress.Target][progress.Host]);
                var request = new ConnectRequest(
                    "CONNECT",
                    hostName,
                    progress.Port,
                    progress.Version!,
                    progress.ProxyAuthorization,
                    progress.HostHeader is { } hostField ? Encoding.Latin1.GetString(head[hostField]) : null,
                    progress.HeaderCount);
                return Http1ParseResult.Complete(request, next);
            }

            if (Http1Syntax.IsWhitespace(line[0]))
            {
                // RFC 9112 §2.2: whitespace between the start-line and the first field MUST be rejected or the
                // line ignored; §5.2: a server that is not a user agent rejects obs-fold with 400.
                return Malformed(next, progress.HeaderCount == 0 ? "whitespace before the first header field" : "obsolete line folding in a header field");
            }

            progress.HeaderCount++;
            if (progress.HeaderCount > maxHeaderCount)
            {
                return Http1ParseResult.Error(RefusalReason.HeadTooLarge, next, "too many header fields");
            }

            var field = ReadField(line, position, next, ref progress.ProxyAuthorization, ref progress.HostHeader);
            if (field is { } badField)
            {
                return badField;
            }
        }
    }

    /// <summary>
    /// Judges a complete request line (RFC 9112 §3: <c>request-line = method SP request-target SP HTTP-version</c>).
    /// Returns null when it is a valid CONNECT, else the refusal.
    /// </summary>
    private static Http1ParseResult? ParseRequestLine(ReadOnlySpan<byte> line, int end, out Range target, out Range host, out int port, out Version? version)
    {
        target = default;
        host = default;
        port = 0;
        version = null;

        int firstSpace = line.IndexOf(Http1Syntax.SP);
        if (firstSpace <= 0)
        {
            return Malformed(end, firstSpace == 0 ? "whitespace before the method" : "request line is not method SP target SP version");
        }

        var method = line[..firstSpace];
        if (method.IndexOfAnyExcept(Http1Syntax.TokenChars) >= 0)
        {
            return Malformed(end, "method is not a token");
        }

        var rest = line[(firstSpace + 1)..];
        int secondSpace = rest.IndexOf(Http1Syntax.SP);
        if (secondSpace <= 0)
        {
            return Malformed(end, "request line is not method SP target SP version");
        }

        target = new Range(firstSpace + 1, firstSpace + 1 + secondSpace);
        var targetText = line[target];
        var versionText = rest[(secondSpace + 1)..];
        if (targetText.IndexOfAnyExcept(Http1Syntax.VisibleAscii) >= 0)
        {
            return Malformed(end, "request target holds a byte that is not visible ASCII");
        }

        switch (ReadVersion(versionText, out version))
        {
            case VersionVerdict.Garbage:
                return Malformed(end, "HTTP version is malformed");
            case VersionVerdict.Unsupported:
                return Http1ParseResult.Error(RefusalReason.UnsupportedVersion, end, "only HTTP/1.1 and HTTP/1.0 are spoken here");
        }

        // RFC 9110 §9.1: the method token is case-sensitive.
        if (!method.SequenceEqual(ConnectMethod))
        {
            return Http1ParseResult.Error(RefusalReason.MethodNotAllowed, end, "only CONNECT is allowed");
        }

        if (!ConnectTarget.TryParse(targetText, out host, out port, out string detail))
        {
            return Malformed(end, detail);
        }

        return null;
    }

    /// <summary>
    /// RFC 9112 §2.3: <c>HTTP-version = HTTP-name "/" DIGIT "." DIGIT</c>, HTTP-name case-sensitive. A well-formed
    /// version other than 1.0 and 1.1, and the minor-less forms of later versions (<c>HTTP/2</c>, <c>HTTP/3</c>),
    /// are unsupported (505, RFC 9110 §15.6.6); anything else is garbage (400).
    /// </summary>
    internal static VersionVerdict ReadVersion(ReadOnlySpan<byte> text, out Version? version)
    {
        version = null;
        if (!text.StartsWith(HttpName))
        {
            return VersionVerdict.Garbage;
        }

        var number = text[HttpName.Length..];
        bool wellFormed = (number.Length == 1 && char.IsAsciiDigit((char)number[0]))
            || (number.Length == 3 && char.IsAsciiDigit((char)number[0]) && number[1] == (byte)'.' && char.IsAsciiDigit((char)number[2]));
        if (!wellFormed)
        {
            return VersionVerdict.Garbage;
        }

        if (number.SequenceEqual("1.1"u8))
        {
            version = HttpVersion.Version11;
            return VersionVerdict.Supported;
        }

        if (number.SequenceEqual("1.0"u8))
        {
            version = HttpVersion.Version10;
            return VersionVerdict.Supported;
        }

        return VersionVerdict.Unsupported;
    }

    /// <summary>
    /// Refuses a first line whose end has not arrived when its bytes already break the grammar: a bare CR, or a
    /// method byte no token can hold. Returns null when more bytes could still make it valid. Looks only at the bytes
    /// <paramref name="progress"/> has not seen (and the last one it has, a CR that may not be followed by LF after all).
    /// </summary>
    private static Http1ParseResult? CheckPartialRequestLine(ReadOnlySpan<byte> partial, int start, ref Http1ParseProgress progress)
    {
        int from = Math.Max(0, progress.Looked - 1);
        int cr = partial[from..].IndexOf(Http1Syntax.CR);
        if (cr >= 0 && from + cr < partial.Length - 1)
        {
            // No LF in the partial line, so this CR is followed by something else.
            return Malformed(start + from + cr + 1, "bare CR in the request line");
        }

        if (progress.MarkSeen)
        {
            // The method ended in bytes already judged.
            return null;
        }

        // The bytes looked at before are all method, all token bytes.
        int seen = progress.Looked;
        int methodEnd = partial[seen..].IndexOfAny(Http1Syntax.SP, Http1Syntax.CR);
        if (methodEnd >= 0)
        {
            methodEnd += seen;
            progress.MarkSeen = true;
            progress.Mark = methodEnd;
        }

        var method = methodEnd < 0 ? partial : partial[..methodEnd];
        if (methodEnd == 0 && partial[0] == Http1Syntax.SP)
        {
            return Malformed(start + 1, "whitespace before the method");
        }

        int bad = method[seen..].IndexOfAnyExcept(Http1Syntax.TokenChars);
        return bad >= 0 ? Malformed(start + seen + bad + 1, "method is not a token") : null;
    }

    private static Http1ParseResult Pending(int examined, bool overLimit) => overLimit
        ? Http1ParseResult.Error(RefusalReason.HeadTooLarge, examined, "request head larger than the limit")
        : Http1ParseResult.Incomplete(examined);

    private static Http1ParseResult Malformed(int examined, string detail) =>
        Http1ParseResult.Error(RefusalReason.MalformedRequest, examined, detail);

    /// <summary>What <see cref="ReadVersion"/> made of an HTTP-version.</summary>
    internal enum VersionVerdict
    {
        Supported,
        Unsupported,
        Garbage,
    }
}
