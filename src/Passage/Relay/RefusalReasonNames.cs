namespace Passage.Relay;

/// <summary>Stable names of <see cref="RefusalReason"/> for metric tags and logs.</summary>
public static class RefusalReasonNames
{
    /// <summary>The tag value for <paramref name="reason"/>.</summary>
    public static string Name(this RefusalReason reason) => reason switch
    {
        RefusalReason.ConnectionLimit => "connection_limit_reached",
        RefusalReason.HandshakeTimeout => "tls_handshake_timeout",
        RefusalReason.ClientClosed => "client_closed",
        RefusalReason.TlsHandshakeFailed => "tls_handshake_failed",
        RefusalReason.ClientIdNotAllowed => "client_id_not_allowed",
        RefusalReason.NotTls => "not_tls",
        RefusalReason.MalformedHello => "tls_protocol_error",
        RefusalReason.HelloTooLarge => "tls_hello_too_large",
        RefusalReason.NoServerName => "no_server_name",
        RefusalReason.NoRoute => "no_route",
        RefusalReason.InvalidDestination => "destination_not_found",
        RefusalReason.DestinationProhibited => "destination_ip_prohibited",
        RefusalReason.DnsError => "dns_error",
        RefusalReason.DnsTimeout => "dns_timeout",
        RefusalReason.UpstreamRefused => "connection_refused",
        RefusalReason.UpstreamTimeout => "connection_timeout",
        RefusalReason.UpstreamUnreachable => "destination_ip_unroutable",
        RefusalReason.ShuttingDown => "proxy_shutting_down",
        RefusalReason.MalformedRequest => "http_request_error",
        RefusalReason.MethodNotAllowed => "method_not_allowed",
        RefusalReason.UnsupportedVersion => "http_version_not_supported",
        RefusalReason.HeadTooLarge => "http_request_head_too_large",
        RefusalReason.DestinationDenied => "destination_denied",
        RefusalReason.AuthenticationRequired => "authentication_required",
        RefusalReason.RequestHeadTimeout => "http_request_timeout",
        RefusalReason.RelayUnavailable => "relay_unavailable",
        RefusalReason.RelayKeyMismatch => "relay_key_mismatch",
        RefusalReason.RelayError => "relay_error",
        RefusalReason.OriginNoAnswer => "origin_no_answer",
        RefusalReason.OriginAnswerTooLarge => "origin_answer_too_large",
        RefusalReason.OriginBadAnswer => "origin_bad_answer",
        _ => "other",
    };
}
