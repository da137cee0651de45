using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Passage.Identity;

/// <summary>What a host string is: an IP literal, a DNS name, or neither.</summary>
internal static class HostName
{
    /// <summary>
    /// True for an IPv6 literal (no brackets) or a dotted-quad IPv4 address. Shorthand that
    /// <see cref="IPAddress.TryParse(string?, out IPAddress?)"/> also accepts, such as "1" or
    /// "10.1", is not an address here: people who write it mean something else.
    /// </summary>
    public static bool TryParseIpLiteral(string host, [NotNullWhen(true)] out IPAddress? address)
    {
        if (IPAddress.TryParse(host, out address)
            && (address.AddressFamily == AddressFamily.InterNetworkV6 || IsDottedQuad(host)))
        {
            return true;
        }
        address = null;
        return false;
    }

    /// <summary>
    /// True for a syntactically valid DNS name (RFC 1123 §2.1 labels) whose last label is not
    /// all digits (RFC 3696 §2), so that "10.1" or "999.1.1.1" is not taken for a name.
    /// </summary>
    public static bool IsDnsName(string host)
    {
        if (host.Length is 0 or > 253 || Uri.CheckHostName(host) != UriHostNameType.Dns)
        {
            return false;
        }
        var last = host.TrimEnd('.');
        last = last[(last.LastIndexOf('.') + 1)..];
        return !last.All(char.IsAsciiDigit);
    }

    /// <summary>
    /// Four decimal parts without leading zeros (RFC 3986 §3.2.2 dec-octet): inet_aton would
    /// read "010" as octal, so such text is not taken as an address at all.
    /// </summary>
    private static bool IsDottedQuad(string host)
    {
        var parts = host.Split('.');
        return parts.Length == 4
            && parts.All(part => part.Length is > 0 and <= 3 && part.All(char.IsAsciiDigit) && (part.Length == 1 || part[0] != '0'));
    }
}
