namespace Passage.Relay;

/// <summary>
/// Why a relay turned a connection away before relaying a byte. The metric tag names follow the
/// proxy error types of RFC 9209 §2.3 where one fits.
/// </summary>
public enum RefusalReason
{
    /// <summary>The relay's open-connection limit was reached (<c>connection_limit_reached</c>).</summary>
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
}
