namespace Passage.Relay;

/// <summary>
/// The HTTP answer an HTTP CONNECT relay gives for each <see cref="RefusalReason"/>: a status code and the
/// RFC 9209 §2.3 proxy error type for its <c>Proxy-Status</c> header.
/// </summary>
/// <remarks>
/// <code>
///  reason                  status  Proxy-Status error        note
///  MalformedRequest         400    http_request_error
///  InvalidDestination       400    http_request_error        the target is not a host name: the client's fault
///  MethodNotAllowed         405    http_request_denied       with Allow: CONNECT
///  AuthenticationRequired   407    http_request_denied       with Proxy-Authenticate
///  RequestHeadTimeout       408    http_request_error
///  HeadTooLarge             431    http_request_error
///  DestinationDenied        403    http_request_denied       policy refused the name or port
///  DestinationProhibited    403    destination_ip_prohibited policy refused a resolved address
///  NoRoute                  502    destination_not_found
///  DnsError                 502    dns_error
///  UpstreamRefused          502    connection_refused
///  UpstreamUnreachable      502    destination_ip_unroutable
///  ConnectionLimit          503    connection_limit_reached
///  ShuttingDown             503    proxy_internal_response   answered locally, nothing was tried
///  UpstreamTimeout          504    connection_timeout
///  DnsTimeout               504    dns_timeout               the lookup outlasted the connect timeout
///  UnsupportedVersion       505    http_protocol_error
///  RelayUnavailable         503    destination_unavailable   the client's HTTP proxy: its relay is down
///  RelayKeyMismatch         503    tls_certificate_error     the client's HTTP proxy: its relay is not the pinned key
///  RelayError               502    http_protocol_error       the client's HTTP proxy: an answer it cannot pass on
///  OriginNoAnswer           502    http_response_incomplete  the client's HTTP proxy: the origin closed, answering nothing
///  OriginAnswerTooLarge     502    http_response_header_section_size  the client's HTTP proxy: the origin's answer head
///  OriginBadAnswer          502    http_protocol_error       the client's HTTP proxy: an answer head it cannot pass on
///  ClientClosed, HandshakeTimeout, NotTls, MalformedHello,
///  HelloTooLarge, NoServerName,
///  ClientIdNotAllowed        0  (none)                    no HTTP answer: the connection or tunnel is closed
/// </code>
/// RFC 9209 recommends 502 for <c>destination_ip_prohibited</c>; Passage answers 403 because the refusal is
/// the relay's policy, not a failure of the next hop, and a client should not retry it. <see cref="RefusalReason.NotTls"/>
/// arises after the 200 of a CONNECT (the tunnel's first bytes are not a ClientHello), when no HTTP answer is
/// possible any more; the other reasons without an answer belong to the TLS layer or to a client that left.
/// The <c>Relay*</c> reasons are the client's (<c>passage client</c>'s HTTP proxy), whose next hop is a relay: 503
/// while no relay can be used, as the tunnel's client end answers while its session is down.
/// </remarks>
public static class RefusalReasonHttp
{
    /// <summary>
    /// The Proxy-Status details (and log text) of a request refused because the relay is stopping
    /// (<see cref="RefusalReason.ShuttingDown"/>), whether it came during the drain or its dial was cut short by it.
    /// </summary>
    public const string ShuttingDownDetail = "relay shutting down";

    /// <summary>
    /// The Proxy-Status details of a CONNECT request that announces content (RFC 9110 §9.3.6: "A CONNECT request message
    /// does not have content"), on either door: a Content-Length other than zero.
    /// </summary>
    public const string ContentOnConnectDetail = "content on a CONNECT request";

    /// <summary>As <see cref="ContentOnConnectDetail"/>, for a CONNECT request with Transfer-Encoding (RFC 9112 §6.1).</summary>
    public const string TransferEncodingOnConnectDetail = "Transfer-Encoding on a CONNECT request";

    /// <summary>
    /// The HTTP status code answered for <paramref name="reason"/>, or 0 when the reason is never answered in
    /// HTTP (see <see cref="HasHttpAnswer"/>): the connection or tunnel is closed instead.
    /// </summary>
    /// <param name="reason">Why the request was turned away.</param>
    /// <returns>A status code from 400 to 505, or 0.</returns>
    public static int StatusCode(this RefusalReason reason) => reason switch
    {
        RefusalReason.MalformedRequest or RefusalReason.InvalidDestination => 400,
        RefusalReason.DestinationDenied or RefusalReason.DestinationProhibited => 403,
        RefusalReason.MethodNotAllowed => 405,
        RefusalReason.AuthenticationRequired => 407,
        RefusalReason.RequestHeadTimeout => 408,
        RefusalReason.HeadTooLarge => 431,
        RefusalReason.NoRoute or RefusalReason.DnsError or RefusalReason.UpstreamRefused or RefusalReason.UpstreamUnreachable
            or RefusalReason.RelayError or RefusalReason.OriginNoAnswer or RefusalReason.OriginAnswerTooLarge or RefusalReason.OriginBadAnswer => 502,
        RefusalReason.ConnectionLimit or RefusalReason.ShuttingDown or RefusalReason.RelayUnavailable or RefusalReason.RelayKeyMismatch => 503,
        RefusalReason.UpstreamTimeout or RefusalReason.DnsTimeout => 504,
        RefusalReason.UnsupportedVersion => 505,
        _ => 0,
    };

    /// <summary>Whether <paramref name="reason"/> is answered with an HTTP response rather than by closing.</summary>
    /// <param name="reason">Why the request was turned away.</param>
    /// <returns>True when <see cref="StatusCode"/> is not 0.</returns>
    public static bool HasHttpAnswer(this RefusalReason reason) => reason.StatusCode() != 0;

    /// <summary>
    /// The RFC 9209 §2.3 proxy error type for the <c>Proxy-Status</c> header answered for
    /// <paramref name="reason"/>. Only registered types are returned, so it can differ from the metric tag
    /// (<see cref="RefusalReasonNames.Name"/>). Reasons without an HTTP answer get the type that would describe
    /// them (for logs): <c>http_request_error</c> for what the client sent or did.
    /// </summary>
    /// <param name="reason">Why the request was turned away.</param>
    /// <returns>A proxy error type, a valid structured-field token.</returns>
    public static string ProxyStatusErrorType(this RefusalReason reason) => reason switch
    {
        RefusalReason.MethodNotAllowed or RefusalReason.DestinationDenied or RefusalReason.AuthenticationRequired => "http_request_denied",
        RefusalReason.UnsupportedVersion => "http_protocol_error",
        RefusalReason.DestinationProhibited => "destination_ip_prohibited",
        RefusalReason.NoRoute => "destination_not_found",
        RefusalReason.DnsError => "dns_error",
        RefusalReason.DnsTimeout => "dns_timeout",
        RefusalReason.UpstreamRefused => "connection_refused",
        RefusalReason.UpstreamTimeout => "connection_timeout",
        RefusalReason.UpstreamUnreachable => "destination_ip_unroutable",
        RefusalReason.ConnectionLimit => "connection_limit_reached",
        RefusalReason.ShuttingDown => "proxy_internal_response",
        RefusalReason.RelayUnavailable => "destination_unavailable",
        RefusalReason.RelayKeyMismatch => "tls_certificate_error",
        RefusalReason.RelayError or RefusalReason.OriginBadAnswer => "http_protocol_error",
        RefusalReason.OriginNoAnswer => "http_response_incomplete",
        RefusalReason.OriginAnswerTooLarge => "http_response_header_section_size",
        _ => "http_request_error",
    };
}
