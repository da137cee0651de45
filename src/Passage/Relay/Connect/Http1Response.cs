using System.Buffers;
using System.Net;

namespace Passage.Relay.Connect;

/// <summary>
/// Writes the HTTP/1.1 response heads a CONNECT relay sends: the 200 that opens a tunnel, and the error answers
/// that carry a <c>Proxy-Status</c> (RFC 9209) and close the connection.
/// </summary>
/// <remarks>
/// Every answer starts with <c>HTTP/1.1</c>, whatever the request's version: RFC 9110 §6.2 has a server send the
/// highest minor version it conforms to within the request's major version, and an HTTP/1.0 client reads it.
/// An error answer has no content (<c>Content-Length: 0</c>): the cause is in <c>Proxy-Status</c>, which clients
/// (curl <c>-v</c>, browsers' network panels) show, and a body would only be one more thing to keep free of the
/// client's bytes. It ends the connection (<c>Connection: close</c>, RFC 9112 §9.6), since whatever the client
/// sent after a refused head cannot be read as a next request.
/// </remarks>
internal static class Http1Response
{
    /// <summary>
    /// The success answer, <c>HTTP/1.1 200 Connection established</c> and the empty line: the tunnel starts with the
    /// next byte. No Content-Length nor Transfer-Encoding (RFC 9110 §9.3.6: a client MUST ignore them on a 2xx to
    /// CONNECT, so a server sends none). One array for every tunnel: nothing is allocated per answer.
    /// </summary>
    /// <param name="requestVersion">The version of the CONNECT being answered, 1.0 or 1.1.</param>
    /// <exception cref="ArgumentException"><paramref name="requestVersion"/> is not HTTP/1.0 or HTTP/1.1 (a caller bug).</exception>
    public static ReadOnlyMemory<byte> Established(Version requestVersion)
    {
        ArgumentNullException.ThrowIfNull(requestVersion);
        if (requestVersion != HttpVersion.Version11 && requestVersion != HttpVersion.Version10)
        {
            throw new ArgumentException("an HTTP/1 CONNECT is version 1.0 or 1.1", nameof(requestVersion));
        }
        return s_established;
    }

    private static readonly byte[] s_established = "HTTP/1.1 200 Connection established\r\n\r\n"u8.ToArray();

    /// <summary>
    /// Writes the complete error answer for <paramref name="reason"/>: status line, <c>Proxy-Status</c>,
    /// <c>Allow: CONNECT</c> for a 405 (RFC 9110 §15.5.6), <c>Proxy-Authenticate</c> for a 407
    /// (RFC 9110 §15.5.8), <c>Connection: close</c>, <c>Content-Length: 0</c> and the empty line.
    /// </summary>
    /// <param name="output">Where the head goes.</param>
    /// <param name="reason">Why the request is refused; it must have an HTTP answer (<see cref="RefusalReasonHttp.HasHttpAnswer"/>).</param>
    /// <param name="details">
    /// A short text for the <c>details</c> parameter, or null for none. Never put bytes the client sent in it;
    /// it is escaped and bounded anyway (<see cref="ProxyStatus"/>).
    /// </param>
    /// <param name="proxyName">The proxy name in <c>Proxy-Status</c>.</param>
    /// <param name="challenge">
    /// The <c>Proxy-Authenticate</c> value of a 407: the schemes the proxy accepts; the relay's (Bearer and Basic) unless given.
    /// </param>
    /// <exception cref="ArgumentException"><paramref name="reason"/> is never answered in HTTP (a caller bug).</exception>
    public static void Error(IBufferWriter<byte> output, RefusalReason reason, string? details, string proxyName = ProxyStatus.DefaultProxyName, string challenge = Auth.ProxyAuthenticator.Challenge)
    {
        ArgumentNullException.ThrowIfNull(output);
        var statusLine = StatusLine(reason.StatusCode());
        if (statusLine.IsEmpty)
        {
            throw new ArgumentException($"{reason} is not answered in HTTP", nameof(reason));
        }

        output.Write(statusLine);
        output.Write("Proxy-Status: "u8);
        ProxyStatus.Write(output, proxyName, reason.ProxyStatusErrorType(), details);
        output.Write("\r\n"u8);
        if (reason == RefusalReason.MethodNotAllowed)
        {
            output.Write("Allow: CONNECT\r\n"u8);
        }
        else if (reason == RefusalReason.AuthenticationRequired)
        {
            output.Write("Proxy-Authenticate: "u8);
            output.Advance(System.Text.Encoding.ASCII.GetBytes(challenge, output.GetSpan(challenge.Length)));
            output.Write("\r\n"u8);
        }

        output.Write("Connection: close\r\nContent-Length: 0\r\n\r\n"u8);
    }

    /// <summary>The status line, CRLF included, for each status <see cref="RefusalReasonHttp.StatusCode"/> returns; empty for 0.</summary>
    private static ReadOnlySpan<byte> StatusLine(int statusCode) => statusCode switch
    {
        // Reason phrases of RFC 9110 §15 and RFC 6585 §5.
        400 => "HTTP/1.1 400 Bad Request\r\n"u8,
        403 => "HTTP/1.1 403 Forbidden\r\n"u8,
        405 => "HTTP/1.1 405 Method Not Allowed\r\n"u8,
        407 => "HTTP/1.1 407 Proxy Authentication Required\r\n"u8,
        408 => "HTTP/1.1 408 Request Timeout\r\n"u8,
        431 => "HTTP/1.1 431 Request Header Fields Too Large\r\n"u8,
        502 => "HTTP/1.1 502 Bad Gateway\r\n"u8,
        503 => "HTTP/1.1 503 Service Unavailable\r\n"u8,
        504 => "HTTP/1.1 504 Gateway Timeout\r\n"u8,
        505 => "HTTP/1.1 505 HTTP Version Not Supported\r\n"u8,
        _ => default,
    };
}
