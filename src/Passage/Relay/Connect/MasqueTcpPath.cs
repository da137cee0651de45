using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace Passage.Relay.Connect;

/// <summary>
/// Reads the target of an HTTP/2 extended CONNECT for TCP from its path, using the default URI
/// template of draft-ietf-httpbis-connect-tcp: <c>/.well-known/masque/tcp/{target_host}/{tcp_port}/</c>.
/// The host is percent-decoded (an IPv6 literal arrives with its colons encoded).
/// </summary>
internal static class MasqueTcpPath
{
    private const string Prefix = "/.well-known/masque/tcp/";

    /// <summary>Where Passage clients probe a relay's round trip (HEAD or GET, answered 204).</summary>
    public const string PingPath = "/.well-known/passage/ping";

    public static bool TryParsePath(string? path, [NotNullWhen(true)] out string? host, out int port)
    {
        host = null;
        port = 0;
        if (path is null || !path.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }
        var rest = path[Prefix.Length..];
        if (rest.EndsWith('/'))
        {
            rest = rest[..^1];
        }
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0 || rest.IndexOf('/', slash + 1) >= 0)
        {
            return false;
        }
        var portText = rest[(slash + 1)..];
        if (!int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            return false;
        }
        string decoded;
        try
        {
            decoded = Uri.UnescapeDataString(rest[..slash]);
        }
        catch (UriFormatException)
        {
            return false;
        }
        if (decoded.Length == 0 || decoded.Any(c => c <= ' ' || c >= 0x7f || c == '/'))
        {
            return false;
        }
        // A bracketed IPv6 literal is accepted too, brackets removed.
        host = decoded.StartsWith('[') && decoded.EndsWith(']') ? decoded[1..^1] : decoded;
        return true;
    }

    /// <summary>The path for <paramref name="host"/> and <paramref name="port"/> under the default template.</summary>
    public static string PathFor(string host, int port) => $"{Prefix}{Uri.EscapeDataString(host)}/{port}/";
}
