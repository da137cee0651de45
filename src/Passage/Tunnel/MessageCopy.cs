using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Primitives;
using Passage.Http;
using Passage.Relay.Connect;

namespace Passage.Tunnel;

/// <summary>
/// Turns an incoming request (Kestrel's view) into the outgoing one (HttpClient's), and the answer back:
/// method, target, end-to-end header fields, Host kept, bodies streamed, trailers passed on.
/// </summary>
internal static class MessageCopy
{
    private static readonly UriCreationOptions s_exactTarget = new() { DangerousDisablePathAndQueryCanonicalization = true };

    /// <summary>
    /// A request for <paramref name="origin"/> (<c>scheme://host:port</c>) with the incoming method, target and
    /// end-to-end fields. The body is not attached. Host is kept: <paramref name="toPeer"/> (the client end's request
    /// to the server end), in <see cref="TunnelHeaders.Host"/>, the request going to the server end's own authority;
    /// else (the server end's request to the backend) the caller sets it with <see cref="SetBackendHost"/>. The forwarding
    /// end, <paramref name="hop"/>, adds its Via entry and counts down Max-Forwards (<see cref="Intermediary.Stamp"/>).
    /// </summary>
    public static HttpRequestMessage CreateRequest(HttpContext context, Intermediary hop, string origin, Version version, HttpMethod? method = null, bool toPeer = false)
    {
        var request = context.Request;
        var target = PathAndQuery(context.Features.Get<IHttpRequestFeature>()?.RawTarget)
            ?? request.PathBase.Add(request.Path).ToUriComponent() + request.QueryString.ToUriComponent();
        if (target.Length == 0)
        {
            target = "/";
        }
        var message = new HttpRequestMessage(method ?? HttpMethod.Parse(request.Method), new Uri(origin + target, in s_exactTarget))
        {
            Version = version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        var connection = new TunnelHeaders.Nominees(request.Headers.Connection);
        foreach (var (name, values) in request.Headers)
        {
            if (name.Equals("Host", StringComparison.OrdinalIgnoreCase) || !TunnelHeaders.IsEndToEnd(name, connection) || IsContentField(name))
            {
                continue;
            }
            message.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }
        if (toPeer && request.Host.HasValue)
        {
            message.Headers.TryAddWithoutValidation(TunnelHeaders.Host, request.Host.Value);
        }
        if (TrailerFields.Accepted(request.Protocol, request.Headers.TE))
        {
            message.Headers.TryAddWithoutValidation("TE", "trailers");
            if (version.Major == 1)
            {
                // RFC 9110 §10.1.4: TE is this hop's, which HTTP/1.1 says in Connection (HTTP/2 has no Connection, RFC 9113 §8.2.2).
                message.Headers.Connection.Add("TE");
            }
        }
        hop.Stamp(request, message);
        return message;
    }

    /// <summary>
    /// The path and query of a request target as written, for the next hop: an origin-form target whole, and the part of an
    /// absolute-form one behind its authority (RFC 9112 §3.2.2; a bare query gets the path "/"), not the path Kestrel parsed
    /// from it, whose dot segments are removed and percent-encoding decoded. Null when there is no target to go by
    /// (asterisk-form, which the client end refuses, or a request that did not come over HTTP/1.1).
    /// </summary>
    private static string? PathAndQuery(string? rawTarget)
    {
        if (string.IsNullOrEmpty(rawTarget))
        {
            return null;
        }
        if (rawTarget[0] == '/')
        {
            return rawTarget;
        }
        var scheme = rawTarget.IndexOf("://", StringComparison.Ordinal);
        if (scheme < 0)
        {
            return null;
        }
        var rest = rawTarget.AsSpan(scheme + 3);
        var end = rest.IndexOfAny('/', '?');
        return end < 0 ? "/" : rest[end] == '?' ? string.Concat("/", rest[end..]) : rest[end..].ToString();
    }

    /// <summary>
    /// At the server end: gives <paramref name="message"/> the application's Host, which the client end sent in
    /// <see cref="TunnelHeaders.Host"/>; without one none is set (the backend's address is used, never the server end's
    /// own authority). Returns why it cannot be sent, or null: the client end's HTTP/1.1 server takes a Host that the
    /// .NET HTTP client refuses (a port past 65535, a name its URI rules refuse such as <c>a!b</c>), and that client,
    /// given one unchecked, sends a Host of its own before it, so the backend would read two.
    /// </summary>
    public static TunnelFailure? SetBackendHost(HttpContext context, HttpRequestMessage message)
    {
        if (context.Request.Headers[TunnelHeaders.Host] is not [{ Length: > 0 } host])
        {
            return null;
        }
        // Added unchecked and read back: the HTTP client's own parser decides, and a value it cannot read reads back as null.
        message.Headers.TryAddWithoutValidation("Host", host);
        return message.Headers.Host == host ? null : new("http_request_error", "the Host field cannot be sent to the backend");
    }

    /// <summary>Adds the incoming request's content fields (Content-Type, ...) to <paramref name="content"/>, except Content-Length.</summary>
    public static void CopyContentFields(HttpRequest request, HttpContent content)
    {
        var connection = new TunnelHeaders.Nominees(request.Headers.Connection);
        foreach (var (name, values) in request.Headers)
        {
            if (IsForwardedContentField(name, connection))
            {
                content.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
    }

    /// <summary>
    /// For a request without a body: an empty content carrying its content fields (Content-Type, ...), which the HTTP client
    /// keeps on the content alone, so that a request without one lost them (a POST of no bytes with its Content-Type, a
    /// PUT with Content-Length: 0). Null when the request has none of them, unless <paramref name="always"/>; null also
    /// for a request that gave no length and whose method anticipates no content (GET, HEAD, DELETE, OPTIONS, TRACE), as
    /// the HTTP client would send the empty content's Content-Length: 0, which such a request should not carry (RFC 9110
    /// §8.6): its content fields, which describe no content, are not worth a length it did not have.
    /// </summary>
    public static HttpContent? EmptyContent(HttpRequest request, bool always)
    {
        var connection = new TunnelHeaders.Nominees(request.Headers.Connection);
        if (!always && ((request.ContentLength is null && !AnticipatesContent(request.Method))
            || !request.Headers.Keys.Any(name => IsForwardedContentField(name, connection))))
        {
            return null;
        }
        var content = new ByteArrayContent([]);
        CopyContentFields(request, content);
        return content;
    }

    /// <summary>
    /// Whether a request of <paramref name="method"/> is expected to carry content: the HTTP client sends one without content
    /// with Content-Length: 0 either way, unless it is a method that anticipates none.
    /// </summary>
    private static bool AnticipatesContent(string method) =>
        !(HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsDelete(method) || HttpMethods.IsOptions(method)
            || HttpMethods.IsTrace(method));

    /// <summary>
    /// Whether <paramref name="name"/> is a content field that goes on beside the body: not Content-Length, which the body
    /// sent decides, nor one that Connection names (this hop's too, RFC 9110 §7.6.1, as for every other field).
    /// </summary>
    private static bool IsForwardedContentField(string name, in TunnelHeaders.Nominees connection) =>
        IsContentField(name) && !name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && TunnelHeaders.IsEndToEnd(name, connection);

    /// <summary>
    /// Appends an RFC 7239 §4 element to the Forwarded field: <c>for=</c> the address the request came from,
    /// and with <paramref name="withHost"/> also <c>proto=http</c> and the <c>host</c> it was sent to.
    /// </summary>
    public static void AddForwarded(HttpRequestMessage message, HttpContext context, bool withHost)
    {
        var address = context.Connection.RemoteIpAddress;
        if (address is { IsIPv4MappedToIPv6: true })
        {
            address = address.MapToIPv4();
        }
        // RFC 7239 §6: an IPv6 node is "[address]" in a quoted-string; unknown peers are "unknown".
        var node = address is null ? "unknown"
            : address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"\"[{address}]\""
            : address.ToString();
        var element = $"for={node}";
        if (withHost)
        {
            element += ";proto=http";
            if (context.Request.Host.HasValue)
            {
                element += $";host=\"{context.Request.Host.Value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"";
            }
        }
        var existing = context.Request.Headers["Forwarded"];
        message.Headers.Remove("Forwarded");
        message.Headers.TryAddWithoutValidation("Forwarded", existing.Count > 0 ? $"{existing}, {element}" : element);
    }

    /// <summary>Copies status and end-to-end fields (response and content fields) of <paramref name="from"/> to <paramref name="to"/>.</summary>
    /// <param name="from">The answer that came back.</param>
    /// <param name="to">The answer going out; nothing may have been sent yet.</param>
    /// <param name="keepContentLength">False when the body is re-encoded on the way and its length changes.</param>
    public static void CopyResponseHead(HttpResponseMessage from, HttpResponse to, bool keepContentLength)
    {
        to.StatusCode = (int)from.StatusCode;
        // A length means nothing beside chunked framing, which decided where the body ended (RFC 9112 §6.3), and an
        // answer without content carries none (RFC 9110 §8.6; a 205's content is dropped, RFC 9110 §15.3.6).
        keepContentLength &= from.Headers.TransferEncodingChunked != true && to.StatusCode is >= 200 and not 204 and not 205;
        var connection = new TunnelHeaders.Nominees(new StringValues(from.Headers.NonValidated.TryGetValues("Connection", out var c) ? c.ToArray() : []));
        foreach (var (name, values) in from.Headers.NonValidated)
        {
            if (TunnelHeaders.IsEndToEnd(name, connection))
            {
                to.Headers[name] = values.ToArray();
            }
        }
        foreach (var (name, values) in from.Content.Headers.NonValidated)
        {
            if (!TunnelHeaders.IsEndToEnd(name, connection))
            {
                continue;
            }
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (keepContentLength)
                {
                    // Once, however often it came (InvalidAnswer has refused lengths that disagree).
                    to.ContentLength = SingleLength(values);
                }
                continue;
            }
            to.Headers[name] = values.ToArray();
        }
    }

    /// <summary>
    /// Why an answer cannot be passed on, or null: a 1xx other than the upgrade that was asked for (HTTP/2 has no
    /// 101, and a stray one there would take the whole session down; <paramref name="switched"/>: the 101 answers the
    /// upgrade asked for), a Content-Length that disagrees with itself or is no number (RFC 9112 §6.3: a proxy answers
    /// 502 then), a field value with a control character (RFC 9110 §5.5: invalid; Kestrel will not send it), or a transfer
    /// coding other than chunked (RFC 9112 §6.1: this hop's, which the application could not undo once its name is gone;
    /// the backend was never offered one, RFC 9110 §10.1.4), or a Transfer-Encoding that names none.
    /// </summary>
    public static TunnelFailure? InvalidAnswer(HttpResponseMessage response, bool switched = false)
    {
        var status = (int)response.StatusCode;
        if (status < 200 && !switched)
        {
            return new("http_protocol_error", $"the answer's status was {status}, which was not asked for");
        }
        if (response.Content.Headers.NonValidated.TryGetValues("Content-Length", out var lengths) && SingleLength(lengths) is null)
        {
            return new("http_protocol_error", "the answer's Content-Length is invalid or disagrees with itself");
        }
        if (!AllValues(response.Headers.NonValidated) || !AllValues(response.Content.Headers.NonValidated))
        {
            return new("http_protocol_error", "a field value of the answer holds a control character");
        }
        var coded = response.Headers.NonValidated.TryGetValues("Transfer-Encoding", out var codings);
        if (coded && NamesOtherThanChunked(codings))
        {
            return new("http_protocol_error", "the answer has a transfer coding other than chunked");
        }
        if (coded && NamesChunkedTwice(codings))
        {
            return new("http_protocol_error", "the answer's Transfer-Encoding names chunked more than once");
        }
        if (coded && !FieldSyntax.ListMembers(codings).Any())
        {
            // Present, it says the Content-Length is not the length (RFC 9112 §6.3: the body runs to the close); empty, it
            // names nothing to undo. The two ways to the backend framed such an answer apart, so it is passed on by neither.
            return new("http_protocol_error", "the answer's Transfer-Encoding names no coding");
        }
        return null;
    }

    /// <summary>
    /// Whether the Transfer-Encoding field values <paramref name="codings"/> name a transfer coding other than chunked: one
    /// that the tunnel does not undo, and that would be lost with the field on the next hop, where the tunnel frames the
    /// body anew (RFC 9112 §6.1), so that the recipient took the still coded bytes for the content.
    /// </summary>
    public static bool NamesOtherThanChunked(IEnumerable<string?> codings) =>
        FieldSyntax.ListMembers(codings).Any(coding => !coding.Equals("chunked", StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// Whether the Transfer-Encoding field values <paramref name="codings"/> name chunked more than once, in one field line or
    /// in several. A sender may apply it once only (RFC 9112 §6.1), and each HTTP stack on the way undoes it once: the body
    /// went on still chunked once, without a field to say so, so that the recipient took the framing for the content.
    /// </summary>
    public static bool NamesChunkedTwice(IEnumerable<string?> codings) =>
        FieldSyntax.ListMembers(codings).Count(coding => coding.Equals("chunked", StringComparison.OrdinalIgnoreCase)) > 1;

    /// <summary>Whether every value of <paramref name="fields"/> is a valid field value (<see cref="FieldSyntax.IsValue(string)"/>).</summary>
    private static bool AllValues(HttpHeadersNonValidated fields)
    {
        foreach (var (_, values) in fields)
        {
            foreach (var value in values)
            {
                if (!FieldSyntax.IsValue(value))
                {
                    return false;
                }
            }
        }
        return true;
    }

    /// <summary>The one length that every Content-Length value and list member states, or null if they disagree or are not numbers.</summary>
    private static long? SingleLength(IEnumerable<string> values)
    {
        long? length = null;
        foreach (var member in values.SelectMany(v => v.Split(',', StringSplitOptions.TrimEntries)))
        {
            if (ParseLength(member) is not { } value || (length is { } seen && seen != value))
            {
                return null;
            }
            length = value;
        }
        return length;
    }

    /// <summary>The value of one of our own fields on the answer, or null.</summary>
    public static string? Single(HttpResponseMessage message, string name) =>
        message.Headers.NonValidated.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>Parses a non-negative length field, or null.</summary>
    public static long? ParseLength(string? text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var value) ? value : null;

    /// <summary>Passes on the trailer fields that came after the body, where the outgoing answer can carry them.</summary>
    public static void CopyTrailers(HttpResponseMessage from, HttpResponse to)
    {
        if (!to.SupportsTrailers())
        {
            return;
        }
        foreach (var (name, value) in TrailerLines(from))
        {
            // The body has gone: a value Kestrel will not send (a control character) is dropped, as ChunkedWriteStream drops it.
            if (TunnelHeaders.IsAllowedTrailer(name) && FieldSyntax.IsValue(value))
            {
                to.AppendTrailer(name, value);
            }
        }
    }

    /// <summary>The answer's trailer fields that came after its body, one per field line, but those its Connection field names.</summary>
    public static IEnumerable<KeyValuePair<string, string>> TrailerLines(HttpResponseMessage response) =>
        // Most answers have none: their Connection field is not read for nothing.
        response.TrailingHeaders.NonValidated.Count == 0 ? [] : TunnelHeaders.NotNominated(
            response.TrailingHeaders.NonValidated.SelectMany(field => field.Value.Select(value => new KeyValuePair<string, string>(field.Key, value))),
            new TunnelHeaders.Nominees(new StringValues(response.Headers.NonValidated.TryGetValues("Connection", out var c) ? c.ToArray() : [])));

    /// <summary>
    /// Answers locally with <paramref name="status"/> and a Proxy-Status field (RFC 9209) naming <paramref name="failure"/>;
    /// with <paramref name="closeConnection"/>, HTTP/1.1 closes the connection after it; <paramref name="allow"/>, an Allow
    /// field's value, which a 405 must carry (RFC 9110 §15.5.6).
    /// </summary>
    public static async Task RefuseAsync(HttpContext context, HttpStatusCode status, TunnelFailure failure, bool closeConnection = false, string? allow = null)
    {
        if (context.Response.HasStarted)
        {
            context.Abort();
            return;
        }
        context.Response.Clear();
        Telemetry.TunnelMetrics.Refused(context, failure.ErrorType);
        context.Response.StatusCode = (int)status;
        context.Response.Headers["Proxy-Status"] = ProxyStatus.Format(ProxyStatus.DefaultProxyName, failure.ErrorType, failure.Details);
        context.Response.ContentType = "text/plain; charset=utf-8";
        // An HTTP/2 answer has no Connection field (RFC 9113 §8.2.2): Kestrel drops it there, with a warning each time.
        if (closeConnection && (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)))
        {
            context.Response.Headers.Connection = "close";
        }
        if (allow is not null)
        {
            context.Response.Headers.Allow = allow;
        }
        await context.Response.WriteAsync($"passage tunnel: {failure.ErrorType}: {failure.Details}\n", context.RequestAborted).ConfigureAwait(false);
    }

    /// <summary>Whether the incoming request has a body to forward (RFC 9112 §6.3: Content-Length or Transfer-Encoding; HTTP/2: no END_STREAM on HEADERS).</summary>
    public static bool HasBody(HttpContext context) =>
        context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? context.Request.ContentLength > 0;

    /// <summary>Whether <paramref name="name"/> is a field .NET keeps on the content rather than on the message.</summary>
    public static bool IsContentField(string name) =>
        name.StartsWith("Content-", StringComparison.OrdinalIgnoreCase) || name.Equals("Expires", StringComparison.OrdinalIgnoreCase)
            || name.Equals("Last-Modified", StringComparison.OrdinalIgnoreCase) || name.Equals("Allow", StringComparison.OrdinalIgnoreCase);
}
