using System.Text;

namespace Passage.Relay.Connect;

/// <summary>The header field lines of the CONNECT head (RFC 9112 §5, RFC 9110 §5).</summary>
internal static partial class Http1ConnectParser
{
    private static ReadOnlySpan<byte> ProxyAuthorizationName => "Proxy-Authorization"u8;

    /// <summary>
    /// The detail of a request with two credentials (RFC 9110 §5.3: a field that is not a list is not repeated), on either
    /// door: which one counts would be a guess.
    /// </summary>
    internal const string RepeatedProxyAuthorization = "more than one Proxy-Authorization field";

    private static ReadOnlySpan<byte> HostName => "Host"u8;

    private static ReadOnlySpan<byte> ContentLengthName => "Content-Length"u8;

    private static ReadOnlySpan<byte> TransferEncodingName => "Transfer-Encoding"u8;

    /// <summary>
    /// Judges one header field line (RFC 9112 §5: <c>field-line = field-name ":" OWS field-value OWS</c>) and keeps
    /// where the values of the fields the relay needs lie in the head. Returns null when it is acceptable, else the
    /// refusal.
    /// </summary>
    private static Http1ParseResult? ReadField(ReadOnlySpan<byte> line, int lineStart, int end, ref Range? proxyAuthorization, ref Range? hostHeader)
    {
        int colon = line.IndexOf((byte)':');
        if (colon < 0)
        {
            return Malformed(end, "header field line without a colon");
        }

        if (colon == 0)
        {
            return Malformed(end, "empty header field name");
        }

        var name = line[..colon];

        // RFC 9112 §5.1: "No whitespace is allowed between the field name and colon ... A server MUST reject,
        // with a response status code of 400 (Bad Request), any received request message that contains
        // whitespace between a header field name and colon."
        if (Http1Syntax.IsWhitespace(name[^1]))
        {
            return Malformed(end, "whitespace between a header field name and the colon");
        }

        if (name.IndexOfAnyExcept(Http1Syntax.TokenChars) >= 0)
        {
            return Malformed(end, "header field name is not a token");
        }

        // RFC 9110 §5.5: field values hold no control characters but HTAB; CR and LF were split off already.
        var value = line[(colon + 1)..];
        if (value.IndexOfAny(Http1Syntax.ForbiddenInFieldValue) >= 0)
        {
            return Malformed(end, "control character in a header field value");
        }

        var trimmed = Http1Syntax.TrimWhitespace(value);
        int valueStart = lineStart + colon + 1;
        var valueInHead = new Range(valueStart + trimmed.Start.Value, valueStart + trimmed.End.Value);
        value = value[trimmed];

        // RFC 9110 §5.1: field names are case-insensitive.
        if (Ascii.EqualsIgnoreCase(name, ProxyAuthorizationName))
        {
            // RFC 9110 §5.3: a field that is not a list may not be repeated; two credentials are ambiguous.
            if (proxyAuthorization is not null)
            {
                return Malformed(end, RepeatedProxyAuthorization);
            }

            proxyAuthorization = valueInHead;
        }
        else if (Ascii.EqualsIgnoreCase(name, HostName))
        {
            if (hostHeader is not null)
            {
                return Malformed(end, HostFieldsProblem(http11: false, 2)!);
            }

            hostHeader = valueInHead;
        }
        else if (ConnectFieldProblem(name, value) is { } content)
        {
            return Malformed(end, content);
        }

        return null;
    }

    /// <summary>
    /// Why a CONNECT request whose head holds the field <paramref name="name"/> with the (trimmed) <paramref name="value"/>
    /// is refused, or null. RFC 9110 §9.3.6: "A CONNECT request message does not have content": a Content-Length of zero
    /// says as much, any other value (or a list, or garbage) would leave bytes whose meaning is ambiguous, and a
    /// Transfer-Encoding announces content (RFC 9112 §6.1). The bytes behind the head are the tunnel's; an intermediary
    /// that framed them as the request's content would read what follows as another request. The client's HTTP proxy
    /// refuses what the relay refuses, with this.
    /// </summary>
    internal static string? ConnectFieldProblem(ReadOnlySpan<byte> name, ReadOnlySpan<byte> value) =>
        Ascii.EqualsIgnoreCase(name, ContentLengthName) && (value.IsEmpty || value.IndexOfAnyExcept((byte)'0') >= 0) ? RefusalReasonHttp.ContentOnConnectDetail
        : Ascii.EqualsIgnoreCase(name, TransferEncodingName) ? RefusalReasonHttp.TransferEncodingOnConnectDetail
        : null;

    /// <summary>
    /// Why a request with <paramref name="hostFields"/> Host fields is refused, or null (RFC 9112 §3.2: a server answers
    /// 400 to a request with more than one, and to an HTTP/1.1 request with none; an HTTP/1.0 one may leave it out). The
    /// client's HTTP proxy refuses what the relay refuses, with this. A Host's value is not used, nor held against the
    /// request: the request target alone names the destination, as a proxy ignores Host beside an absolute-form target
    /// (§3.2.2). Clients differ in what they put there: most the target, Node's fetch the host alone, Python's http.client
    /// an IPv6 target without brackets, Node's own <c>http.request</c> (the tunnel of its documentation) the proxy's
    /// address. The reasons are constants, holding none of the request's bytes.
    /// </summary>
    internal static string? HostFieldsProblem(bool http11, int hostFields) =>
        hostFields > 1 ? "more than one Host field"
        : hostFields == 0 && http11 ? "no Host field in an HTTP/1.1 request"
        : null;

    /// <summary>
    /// Refuses a header field line whose end has not arrived when its bytes already break the grammar: a bare CR,
    /// leading whitespace (obs-fold), a byte no field name can hold, a control character in the value. Returns
    /// null when more bytes could still make it valid (a CR at the very end may be the start of CRLF). Looks only at
    /// the bytes <paramref name="progress"/> has not seen (and the last one it has, a CR that may not be followed by LF
    /// after all): those before passed these checks.
    /// </summary>
    private static Http1ParseResult? CheckPartialFieldLine(ReadOnlySpan<byte> partial, int start, int headerCount, ref Http1ParseProgress progress)
    {
        if (partial.IsEmpty)
        {
            return null;
        }

        int from = Math.Max(0, progress.Looked - 1);
        int cr = partial[from..].IndexOf(Http1Syntax.CR);
        if (cr >= 0 && from + cr < partial.Length - 1)
        {
            return Malformed(start + from + cr + 1, "bare CR in a header field line");
        }

        if (cr >= 0)
        {
            partial = partial[..(from + cr)];
        }

        if (partial.IsEmpty)
        {
            return null;
        }

        if (Http1Syntax.IsWhitespace(partial[0]))
        {
            return Malformed(start + 1, headerCount == 0 ? "whitespace before the first header field" : "obsolete line folding in a header field");
        }

        from = Math.Min(from, partial.Length);
        int colon;
        if (progress.MarkSeen)
        {
            colon = progress.Mark;
        }
        else
        {
            colon = partial[from..].IndexOf((byte)':');
            if (colon >= 0)
            {
                colon += from;
                progress.MarkSeen = true;
                progress.Mark = colon;
            }
        }

        var name = colon < 0 ? partial : partial[..colon];
        if (from < name.Length)
        {
            int bad = name[from..].IndexOfAnyExcept(Http1Syntax.TokenChars);
            if (bad >= 0)
            {
                bad += from;
                return Malformed(start + bad + 1, Http1Syntax.IsWhitespace(name[bad]) ? "whitespace in or after a header field name" : "header field name is not a token");
            }
        }

        if (colon >= 0 && partial[Math.Max(colon + 1, from)..].IndexOfAny(Http1Syntax.ForbiddenInFieldValue) >= 0)
        {
            return Malformed(start + partial.Length, "control character in a header field value");
        }

        return null;
    }
}
