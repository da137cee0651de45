namespace Passage.Tunnel;

/// <summary>The HTTP version the two ends speak to each other (<c>transport.protocol</c>).</summary>
public enum TunnelProtocol
{
    /// <summary>HTTP/2 over TLS 1.3 over TCP. Also what <c>auto</c> resolves to.</summary>
    Http2,

    /// <summary>HTTP/3 over QUIC; only where the runtime reports QUIC support.</summary>
    Http3,
}
