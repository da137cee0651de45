namespace Passage.Tests.Relay.Passthrough;

/// <summary>Real TLS clients whose first flight the tests capture on loopback.</summary>
public enum HelloSource
{
    /// <summary>SslStream, platform default protocols, target "origin.test", ALPN h2 and http/1.1.</summary>
    SslStreamDefault,

    /// <summary>SslStream limited to TLS 1.2, target "origin.test".</summary>
    SslStreamTls12,

    /// <summary>SslStream limited to TLS 1.3, target "origin.test".</summary>
    SslStreamTls13,

    /// <summary>SslStream with an IP address as target: no server_name is sent.</summary>
    SslStreamIpTarget,

    /// <summary>The curl program, connecting to https://origin.test/ redirected to the listener.</summary>
    Curl,
}
