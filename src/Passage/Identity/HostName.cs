using System.Buffers;
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
    /// "10.1", is not an address here: people who write it mean something else. Nor is what it takes for IPv6 beyond
    /// the address and a zone of RFC 6874 §2's characters (<c>fe80::1%eth0</c>): brackets and a port (<c>[::1]:80</c>,
    /// which it reads as <c>::1</c>), or a zone that is empty or holds anything else (<c>::1%</c>, a space, a line break),
    /// which it ignores: taken as the host, such text would not read back as the address it was taken for.
    /// </summary>
    public static bool TryParseIpLiteral(string host, [NotNullWhen(true)] out IPAddress? address)
    {
        if (IPAddress.TryParse(host, out address)
            && (address.AddressFamily == AddressFamily.InterNetworkV6 ? IsBareIPv6(host) : IsDottedQuad(host)))
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

    // ZoneID = 1*( unreserved / pct-encoded ) (RFC 6874 §2), unreserved being ALPHA / DIGIT / "-" / "." / "_" / "~"
    // (RFC 3986 §2.3); an interface is named by its name or its index, so no percent-encoding is taken.
    private static readonly SearchValues<char> s_zoneChars =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~");

    /// <summary>An IPv6 address as text, without brackets, its zone (after <c>%</c>) if any not empty and of <see cref="s_zoneChars"/>.</summary>
    private static bool IsBareIPv6(string host)
    {
        if (host.AsSpan().ContainsAny('[', ']'))
        {
            return false;
        }
        var percent = host.IndexOf('%', StringComparison.Ordinal);
        return percent < 0 || (percent < host.Length - 1 && !host.AsSpan(percent + 1).ContainsAnyExcept(s_zoneChars));
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
