namespace Passage.Relay;

/// <summary>
/// Why a relay turned a connection or a tunnel away. The metric tag names (<see cref="RefusalReasonNames"/>)
/// follow the proxy error types of RFC 9209 §2.3 where one fits; the HTTP answer a CONNECT relay sends for
/// each is in <see cref="RefusalReasonHttp"/>. New members go at the end so that the values stay stable.
/// </summary>
public enum RefusalReason
{
    /// <summary>
    /// The relay's open-connection limit was reached, or its open-file limit: no descriptor for the upstream socket
    /// (<c>connection_limit_reached</c>).
    /// </summary>
    ConnectionLimit,

    /// <summary>The client did not send its whole ClientHello in time (<c>tls_handshake_timeout</c>).</summary>
    HandshakeTimeout,

    /// <summary>The client closed before sending a whole ClientHello (<c>client_closed</c>).</summary>
    ClientClosed,

    /// <summary>The first bytes were not TLS (<c>not_tls</c>).</summary>
    NotTls,

    /// <summary>The ClientHello broke the TLS rules (<c>tls_protocol_error</c>).</summary>
    MalformedHello,

    /// <summary>The ClientHello was larger than allowed (<c>tls_hello_too_large</c>).</summary>
    HelloTooLarge,

    /// <summary>The ClientHello named no server and no fixed upstream is set (<c>no_server_name</c>).</summary>
    NoServerName,

    /// <summary>No route matches the server name (<c>no_route</c>).</summary>
    NoRoute,

    /// <summary>The destination name is not a valid host name (<c>destination_not_found</c>).</summary>
    InvalidDestination,

    /// <summary>The destination resolves to an address the policy refuses (<c>destination_ip_prohibited</c>).</summary>
    DestinationProhibited,

    /// <summary>The destination name could not be resolved (<c>dns_error</c>).</summary>
    DnsError,

    /// <summary>The destination refused the connection (<c>connection_refused</c>).</summary>
    UpstreamRefused,

    /// <summary>The destination did not answer in time (<c>connection_timeout</c>).</summary>
    UpstreamTimeout,

    /// <summary>No route to the destination (<c>destination_ip_unroutable</c>).</summary>
    UpstreamUnreachable,

    /// <summary>The relay is shutting down (<c>proxy_shutting_down</c>).</summary>
    ShuttingDown,

    /// <summary>
    /// The HTTP request head breaks the HTTP/1.1 syntax (RFC 9112), or a CONNECT request carries content or a
    /// target not in authority-form (<c>http_request_error</c>; answered 400, Proxy-Status
    /// <c>http_request_error</c>).
    /// </summary>
    MalformedRequest,

    /// <summary>
    /// A well-formed request with a method other than CONNECT (<c>method_not_allowed</c>; answered 405 with
    /// <c>Allow: CONNECT</c>, Proxy-Status <c>http_request_denied</c>).
    /// </summary>
    MethodNotAllowed,

    /// <summary>
    /// An HTTP version other than 1.0 or 1.1 on an HTTP/1 connection (<c>http_version_not_supported</c>;
    /// answered 505, Proxy-Status <c>http_protocol_error</c>).
    /// </summary>
    UnsupportedVersion,

    /// <summary>
    /// The request head is longer, or has more header fields, than allowed (<c>http_request_head_too_large</c>;
    /// answered 431, Proxy-Status <c>http_request_error</c>).
    /// </summary>
    HeadTooLarge,

    /// <summary>
    /// The destination policy refuses the requested host name or port (<c>destination_denied</c>; answered 403,
    /// Proxy-Status <c>http_request_denied</c>). Refusals on a resolved address are
    /// <see cref="DestinationProhibited"/>.
    /// </summary>
    DestinationDenied,

    /// <summary>
    /// The request carried no acceptable proxy credentials (<c>authentication_required</c>; answered 407 with a
    /// <c>Proxy-Authenticate</c> challenge, Proxy-Status <c>http_request_denied</c>).
    /// </summary>
    AuthenticationRequired,

    /// <summary>
    /// The client did not send a whole request head in time (<c>http_request_timeout</c>; answered 408,
    /// Proxy-Status <c>http_request_error</c>).
    /// </summary>
    RequestHeadTimeout,

    /// <summary>The TLS handshake with the relay failed: bad record, no shared version or cipher (<c>tls_handshake_failed</c>).</summary>
    TlsHandshakeFailed,

    /// <summary>
    /// The destination name's lookup did not finish within the connect timeout (<c>dns_timeout</c>; answered 504).
    /// </summary>
    DnsTimeout,

    /// <summary>
    /// The client's relay could not be reached or its connection broke (<c>relay_unavailable</c>; answered by the
    /// client's HTTP proxy with 503, Proxy-Status <c>destination_unavailable</c>: its next hop is down).
    /// </summary>
    RelayUnavailable,

    /// <summary>
    /// The client's relay presented a key other than its pinned node ID (<c>relay_key_mismatch</c>; answered by the
    /// client's HTTP proxy with 503, Proxy-Status <c>tls_certificate_error</c>).
    /// </summary>
    RelayKeyMismatch,

    /// <summary>
    /// The client's relay answered what the client cannot pass on: a status it does not expect, or a demand for
    /// credentials the client has not got (<c>relay_error</c>; answered by the client's HTTP proxy with 502,
    /// Proxy-Status <c>http_protocol_error</c>).
    /// </summary>
    RelayError,

    /// <summary>
    /// The origin of a plain <c>http://</c> request that the client's HTTP proxy forwarded ended its side without a
    /// byte of answer (<c>origin_no_answer</c>; answered 502, Proxy-Status <c>http_response_incomplete</c>).
    /// </summary>
    OriginNoAnswer,

    /// <summary>
    /// The origin of a plain <c>http://</c> request that the client's HTTP proxy forwarded answered with a head larger
    /// than the proxy reads (<c>origin_answer_too_large</c>; answered 502, Proxy-Status
    /// <c>http_response_header_section_size</c>).
    /// </summary>
    OriginAnswerTooLarge,

    /// <summary>
    /// The origin of a plain <c>http://</c> request that the client's HTTP proxy forwarded answered with a head the proxy
    /// cannot pass on: not an HTTP/1.x status line, a malformed field line, an ambiguous body framing, a switch of
    /// protocols (<c>origin_bad_answer</c>; answered 502, Proxy-Status <c>http_protocol_error</c>).
    /// </summary>
    OriginBadAnswer,

    /// <summary>
    /// A relay that serves only listed client IDs (<c>--client-id</c>) was presented no client certificate, or one whose key
    /// it does not list (<c>client_id_not_allowed</c>; no HTTP answer: the TLS handshake fails).
    /// </summary>
    ClientIdNotAllowed,
}
