using System.Net;

namespace Passage.Relay.Connect;

/// <summary>The CONNECT front door: an HTTPS proxy speaking HTTP/1.1 CONNECT and HTTP/2 extended CONNECT.</summary>
public sealed record ConnectOptions
{
    /// <summary>Where the relay listens with TLS (its identity's certificate; ALPN h2 and http/1.1).</summary>
    public IReadOnlyList<IPEndPoint> Endpoints { get; init; } = Array.Empty<IPEndPoint>();

    /// <summary>Where it listens without TLS (HTTP/1.1 CONNECT, and HTTP/2 with prior knowledge).</summary>
    public IReadOnlyList<IPEndPoint> PlainEndpoints { get; init; } = Array.Empty<IPEndPoint>();

    /// <summary>The identity file (key and certificate); created on first start if missing.</summary>
    public string KeyFile { get; init; } = "passage-data/relay.pem";

    /// <summary>DNS names and IP addresses written into a newly created certificate. Default none.</summary>
    public IReadOnlyList<string> Names { get; init; } = Array.Empty<string>();

    /// <summary>Destination patterns allowed (<c>host:port</c>); none means any public host on port 443.</summary>
    public IReadOnlyList<string> Allow { get; init; } = Array.Empty<string>();

    /// <summary>Destination patterns refused; they win over <see cref="Allow"/>.</summary>
    public IReadOnlyList<string> Deny { get; init; } = Array.Empty<string>();

    /// <summary>Close a tunnel whose first bytes from the client are not a TLS ClientHello. Default false.</summary>
    public bool RequireTls { get; init; }

    /// <summary>A file of bearer tokens, one per line, re-read when it changes. Default none (no authentication).</summary>
    public string? TokenFile { get; init; }

    /// <summary>
    /// Node IDs of clients allowed in by mutual TLS; none means no client certificate is asked for. They guard
    /// <see cref="Endpoints"/> only: <see cref="PlainEndpoints"/> have no TLS and serve every client (the settings refuse both
    /// together).
    /// </summary>
    public IReadOnlyList<string> ClientIds { get; init; } = Array.Empty<string>();

    /// <summary>Lowest HTTP version served: 1 (HTTP/1.1 and HTTP/2) or 2 (HTTP/2 only). Default 1.</summary>
    public int MinHttpVersion { get; init; } = 1;

    /// <summary>Time for the whole HTTP/1.1 request head, an HTTP/2 connection's start, or an HTTP/2 header block once begun (slowloris guard). Default 10 s.</summary>
    public TimeSpan RequestHeadTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest HTTP/1.1 request head, and HTTP/2 request header list (RFC 9113 §6.5.2's measure). Default 8 KiB.</summary>
    public int MaxRequestHeadBytes { get; init; } = 8 * 1024;

    /// <summary>Tunnels open at once across all clients. Default 4096.</summary>
    public int MaxTunnels { get; init; } = 4096;

    /// <summary>Tunnels open at once from one client: an IPv4 address, an IPv6 /64 (see <see cref="TunnelLimiter"/>). Default 256.</summary>
    public int MaxTunnelsPerClient { get; init; } = 256;

    /// <summary>HTTP/2 tunnels one connection may carry at once. Default 256.</summary>
    public int MaxStreamsPerConnection { get; init; } = 256;

    /// <summary>HTTP/2 receive window of one tunnel, in bytes: what one tunnel may have in flight. Default 4 MiB.</summary>
    public int StreamWindowBytes { get; init; } = 4 * 1024 * 1024;

    /// <summary>HTTP/2 receive window of a connection, shared by its tunnels. Default 16 MiB.</summary>
    public int ConnectionWindowBytes { get; init; } = 16 * 1024 * 1024;
}
