using System.Text;
using Passage.Configuration;

namespace Passage.Client.HttpProxy;

/// <summary>
/// A request head as a local HTTP proxy receives it (RFC 9112 §3.2): CONNECT in authority-form, or
/// a plain <c>http://</c> request in absolute-form, which is forwarded in origin-form with the
/// proxy's own hop-by-hop headers removed.
/// </summary>
internal sealed record ProxyRequestHead(string Method, string Host, int Port, string PathAndQuery, string Version, IReadOnlyList<(string Name, string Value)> Headers)
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authorization", "Proxy-Authenticate", "TE", "Trailer", "Upgrade",
    };

    public bool IsConnect => Method == "CONNECT";

    /// <summary>Parses a whole head (ending with the empty line). Null, with a reason, when it is not one this proxy serves.</summary>
    public static ProxyRequestHead? Parse(ReadOnlySpan<byte> head, out string? error)
    {
        error = null;
        string text;
        try
        {
            text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(head);
        }
        catch (DecoderFallbackException)
        {
            error = "the request head is not text";
            return null;
        }
        var lines = text.Split("\r\n");
        var requestLine = lines[0].Split(' ');
        if (requestLine.Length != 3 || !requestLine[2].StartsWith("HTTP/1.", StringComparison.Ordinal))
        {
            error = "malformed request line";
            return null;
        }
        var headers = new List<(string, string)>();
        foreach (var line in lines.Skip(1).TakeWhile(l => l.Length > 0))
        {
            var colon = line.IndexOf(':', StringComparison.Ordinal);
            if (colon <= 0 || char.IsWhiteSpace(line[0]) || char.IsWhiteSpace(line[colon - 1]))
            {
                error = "malformed header";
                return null;
            }
            headers.Add((line[..colon], line[(colon + 1)..].Trim()));
        }
        var (method, target, version) = (requestLine[0], requestLine[1], requestLine[2]);
        if (method == "CONNECT")
        {
            if (!HostPort.TryParse(target, out var hostPort, out error))
            {
                return null;
            }
            return new ProxyRequestHead(method, hostPort.Value.Host, hostPort.Value.Port, "", version, headers);
        }
        if (!Uri.TryCreate(target, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp || uri.UserInfo.Length > 0)
        {
            error = "only CONNECT and absolute http:// requests are served";
            return null;
        }
        return new ProxyRequestHead(method, uri.IdnHost.Trim('[', ']'), uri.Port, uri.PathAndQuery, version, headers);
    }

    /// <summary>
    /// The head to send to the origin through the tunnel: origin-form, the proxy's hop-by-hop headers
    /// removed, Host kept (or set from the URI), and <c>Connection: close</c> (one request per tunnel).
    /// </summary>
    public byte[] ToOriginForm()
    {
        var builder = new StringBuilder().Append(Method).Append(' ').Append(PathAndQuery).Append(' ').Append(Version).Append("\r\n");
        var hasHost = false;
        foreach (var (name, value) in Headers)
        {
            if (HopByHop.Contains(name))
            {
                continue;
            }
            hasHost |= name.Equals("Host", StringComparison.OrdinalIgnoreCase);
            builder.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        if (!hasHost)
        {
            builder.Append("Host: ").Append(Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]" : Host);
            builder.Append(Port == 80 ? "" : $":{Port}").Append("\r\n");
        }
        builder.Append("Connection: close\r\n\r\n");
        return Encoding.UTF8.GetBytes(builder.ToString());
    }
}
