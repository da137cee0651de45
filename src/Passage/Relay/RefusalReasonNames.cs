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
        RefusalReason.NotTls => "not_tls",
        RefusalReason.MalformedHello => "tls_protocol_error",
        RefusalReason.HelloTooLarge => "tls_hello_too_large",
        RefusalReason.NoServerName => "no_server_name",
        RefusalReason.NoRoute => "no_route",
        RefusalReason.InvalidDestination => "destination_not_found",
        RefusalReason.DestinationProhibited => "destination_ip_prohibited",
        RefusalReason.DnsError => "dns_error",
        RefusalReason.UpstreamRefused => "connection_refused",
        RefusalReason.UpstreamTimeout => "connection_timeout",
        RefusalReason.UpstreamUnreachable => "destination_ip_unroutable",
        RefusalReason.ShuttingDown => "proxy_shutting_down",
        _ => "other",
    };
}
