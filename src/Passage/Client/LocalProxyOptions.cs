using System.Net;

namespace Passage.Client;

/// <summary>The local front doors of <c>passage client</c>: SOCKS5 and an HTTP proxy, on loopback by default.</summary>
public sealed record LocalProxyOptions
{
    /// <summary>SOCKS5 endpoints. Default 127.0.0.1:1080.</summary>
    public IReadOnlyList<IPEndPoint> SocksEndpoints { get; init; } = [new(IPAddress.Loopback, 1080)];

    /// <summary>HTTP proxy endpoints (CONNECT and absolute-form http://). Default 127.0.0.1:8118.</summary>
    public IReadOnlyList<IPEndPoint> HttpEndpoints { get; init; } = [new(IPAddress.Loopback, 8118)];

    /// <summary>SOCKS5 username/password pairs (RFC 1929); none means no authentication. Default none.</summary>
    public IReadOnlyDictionary<string, string> SocksUsers { get; init; } = new Dictionary<string, string>();

    /// <summary>HTTP proxy users (<c>Proxy-Authorization: Basic</c>, RFC 7617); none means no authentication. Default none.</summary>
    public IReadOnlyDictionary<string, string> HttpUsers { get; init; } = new Dictionary<string, string>();

    /// <summary>Connections open at once on each front door, shared by its endpoints (SOCKS5 and the HTTP proxy each have as many). Default 4096.</summary>
    public int MaxConnections { get; init; } = 4096;

    /// <summary>Time for a SOCKS handshake or an HTTP request head (the application's part, not the relay's answer). Default 10 s.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Close a tunnel after this long with no byte either way. Default 5 min.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// <c>client.admin</c>: where <c>passage client</c> serves <c>/metrics</c> and <c>/healthz</c> (an
    /// <see cref="Telemetry.AdminServer"/> beside the front doors; <see cref="LocalProxy"/> itself does not start it).
    /// Default none.
    /// </summary>
    public IPEndPoint? AdminEndpoint { get; init; }
}
