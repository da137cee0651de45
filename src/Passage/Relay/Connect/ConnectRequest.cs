namespace Passage.Relay.Connect;

/// <summary>
/// A parsed HTTP/1.1 CONNECT request head (RFC 9110 §9.3.6), holding only what a relay needs.
/// </summary>
/// <param name="Method">The request method, always <c>CONNECT</c> (RFC 9110 §9.1: case-sensitive).</param>
/// <param name="Host">
/// The target host as written in the authority-form request target (RFC 9112 §3.2.3), without the brackets of
/// an IPv6 literal and without the port: a DNS name, an IPv4 literal or an IPv6 literal, not yet normalized
/// nor checked against any policy.
/// </param>
/// <param name="Port">The target port, 1 to 65535.</param>
/// <param name="Version">The request's HTTP version: <see cref="System.Net.HttpVersion.Version10"/> or <see cref="System.Net.HttpVersion.Version11"/>.</param>
/// <param name="ProxyAuthorization">
/// Where the <c>Proxy-Authorization</c> field value (RFC 9110 §11.7.2) lies in the bytes parsed, counted from their first
/// byte, without surrounding whitespace (each byte one Latin-1 character), or null when absent. A credential: read from
/// those bytes (<see cref="Auth.ProxyAuthenticator.CheckLatin1"/>), never made a string, which could not be cleared, and
/// never logged.
/// </param>
/// <param name="HostHeader">The <c>Host</c> field value (RFC 9110 §7.2) without surrounding whitespace, or null when absent.</param>
/// <param name="HeaderCount">How many header field lines the head had.</param>
internal sealed record ConnectRequest(
    string Method,
    string Host,
    int Port,
    Version Version,
    Range? ProxyAuthorization,
    string? HostHeader,
    int HeaderCount)
{
    /// <summary>Leaves the credential out, so that a request can be logged or shown in a test failure.</summary>
    /// <returns>The request without its <see cref="ProxyAuthorization"/> value.</returns>
    public override string ToString() =>
        $"{Method} {Host}:{Port} HTTP/{Version.Major}.{Version.Minor} ({HeaderCount} headers{(ProxyAuthorization is null ? "" : ", with credentials")})";
}
