using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// Reads the target of an HTTP/2 extended CONNECT for TCP from its path, using the default URI
/// template of draft-ietf-httpbis-connect-tcp: <c>/.well-known/masque/tcp/{target_host}/{tcp_port}/</c>.
/// The path is read as received (not as Kestrel decoded it): the host is percent-decoded once (an IPv6 literal
/// arrives with its colons encoded, bracketed or not), and the host and port are then read as the HTTP/1.1 door reads
/// its request target (<see cref="ConnectTarget"/>), so both doors take the same targets.
/// </summary>
internal static class MasqueTcpPath
{
    private const string Prefix = "/.well-known/masque/tcp/";

    /// <summary>Where Passage clients probe a relay's round trip (HEAD or GET, answered 204).</summary>
    public const string PingPath = "/.well-known/passage/ping";

    /// <summary>The detail of a path that does not follow the template.</summary>
    public const string NotTheTemplate = "path is not /.well-known/masque/tcp/{host}/{port}/";

    /// <summary>Reads <paramref name="rawPath"/>, the request's <c>:path</c> as received.</summary>
    /// <param name="rawPath">The <c>:path</c> pseudo-header, not decoded.</param>
    /// <param name="host">The target host without brackets, not yet normalized nor checked against any policy.</param>
    /// <param name="port">The target port, 1 to 65535.</param>
    /// <param name="detail">On failure, a constant reason that holds none of the path's bytes.</param>
    /// <returns>Whether the path names a valid target.</returns>
    public static bool TryParsePath(string? rawPath, [NotNullWhen(true)] out string? host, out int port, out string detail)
    {
        host = null;
        port = 0;
        detail = NotTheTemplate;
        // The template has no query (RFC 3986 §3.4) nor fragment: a target with one would be read with a part left out.
        if (rawPath is null || !rawPath.StartsWith(Prefix, StringComparison.Ordinal) || rawPath.AsSpan().ContainsAny('?', '#'))
        {
            return false;
        }
        var rest = rawPath.AsSpan(Prefix.Length);
        if (rest.EndsWith('/'))
        {
            rest = rest[..^1];
        }
        var slash = rest.IndexOf('/');
        if (slash <= 0 || rest[(slash + 1)..].Contains('/'))
        {
            return false;
        }
        if (!TryPercentDecode(rest[..slash], out var decoded))
        {
            detail = "malformed percent-encoding in the target host";
            return false;
        }
        // An IPv6 literal, its colons encoded, is bracketed here (if it was not) as authority-form wants it.
        var bracket = decoded.Contains(':') && !decoded.StartsWith('[');
        return ConnectTarget.TryParse($"{(bracket ? "[" : "")}{decoded}{(bracket ? "]" : "")}:{rest[(slash + 1)..]}", out host, out port, out detail);
    }

    /// <summary>The path for <paramref name="host"/> and <paramref name="port"/> under the default template.</summary>
    public static string PathFor(string host, int port) => $"{Prefix}{Uri.EscapeDataString(host)}/{port}/";

    /// <summary>
    /// Decodes <c>%XX</c> escapes (RFC 3986 §2.1), each byte one Latin-1 character; false when a <c>%</c> is not
    /// followed by two hex digits. (<see cref="Uri.UnescapeDataString(string)"/> would leave such a <c>%</c> as it is.)
    /// </summary>
    private static bool TryPercentDecode(ReadOnlySpan<char> text, out string decoded)
    {
        var builder = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '%')
            {
                builder.Append(text[i]);
                continue;
            }
            if (i + 2 >= text.Length || !char.IsAsciiHexDigit(text[i + 1]) || !char.IsAsciiHexDigit(text[i + 2]))
            {
                decoded = "";
                return false;
            }
            builder.Append((char)Convert.FromHexString(text.Slice(i + 1, 2))[0]);
            i += 2;
        }
        decoded = builder.ToString();
        return true;
    }
}
