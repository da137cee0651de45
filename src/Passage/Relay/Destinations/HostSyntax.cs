using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// Tells an address literal from a DNS name before anything is looked up, so that a literal is never
/// sent to a resolver (which might read it differently) and a malformed name never leaves the process.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>IPv6: bracketed or bare, with an optional zone after <c>%</c> (RFC 4007 §11); no port.</item>
/// <item>IPv4: if the last label is numeric (decimal digits, or <c>0x</c> and hex digits) the host must
/// be an IPv4 literal in one of the inet_aton forms (<see cref="Ipv4Literal"/>), or it is invalid. A
/// top-level domain is never all-numeric (RFC 3696 §2), so no real name is lost; this is the WHATWG URL
/// standard's "ends in a number" rule, made strict (no trailing dot).</item>
/// <item>Names: ASCII letters, digits, hyphens and underscores in dot-separated labels of 1 to 63
/// characters, not starting or ending with a hyphen (RFC 1123 §2.1), at most 253 characters without
/// an optional final dot (RFC 1035 §2.3.4). Internationalised names must arrive as A-labels
/// (RFC 5890).</item>
/// </list>
/// </remarks>
internal static class HostSyntax
{
    /// <summary>Longest name, without the final dot (RFC 1035 §2.3.4: 255 octets on the wire).</summary>
    public const int MaxNameLength = 253;

    /// <summary>Longest label (RFC 1035 §2.3.4).</summary>
    public const int MaxLabelLength = 63;

    // Longest textual IPv6 address, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
    private const int MaxIPv6Length = 45;

    // Interface names are at most 15 characters on Linux; numeric zones are at most 10 digits.
    private const int MaxZoneLength = 32;

    private static readonly SearchValues<char> s_labelChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_");

    private static readonly SearchValues<char> s_ipv6Chars =
        SearchValues.Create("0123456789abcdefABCDEF:.");

    private static readonly SearchValues<char> s_hexDigits = SearchValues.Create("0123456789abcdefABCDEF");

    private static readonly SearchValues<char> s_zoneChars =
        SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    /// <summary>Classifies <paramref name="host"/> as a literal, a name, or invalid.</summary>
    /// <param name="host">The host as the route or request named it.</param>
    /// <param name="address">The address, when <paramref name="host"/> is a literal.</param>
    /// <returns>What the host is.</returns>
    public static HostKind Parse(string host, out IPAddress? address)
    {
        address = null;
        if (host.Length == 0 || host.Length > MaxNameLength + 1)
        {
            return HostKind.Invalid;
        }

        if (host[0] == '[')
        {
            return host.Length > 2 && host[^1] == ']' && TryParseIPv6(host.AsSpan(1, host.Length - 2), out address)
                ? HostKind.Address
                : HostKind.Invalid;
        }

        if (host.Contains(':', StringComparison.Ordinal))
        {
            return TryParseIPv6(host, out address) ? HostKind.Address : HostKind.Invalid;
        }

        ReadOnlySpan<char> withoutFinalDot = host.EndsWith('.') ? host.AsSpan(0, host.Length - 1) : host;
        int lastDot = withoutFinalDot.LastIndexOf('.');
        if (IsNumericLabel(withoutFinalDot[(lastDot + 1)..]))
        {
            return withoutFinalDot.Length == host.Length && Ipv4Literal.TryParse(host, out address)
                ? HostKind.Address
                : HostKind.Invalid;
        }

        return IsValidName(withoutFinalDot) ? HostKind.Name : HostKind.Invalid;
    }

    /// <summary>
    /// The key a name is known by in a static map: without its final dot. Compare it ignoring case.
    /// </summary>
    /// <param name="name">A host name that <see cref="Parse"/> accepted as a name.</param>
    /// <returns>The name without a final dot.</returns>
    public static string ToMapKey(string name) => name.EndsWith('.') ? name[..^1] : name;

    private static bool TryParseIPv6(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        int percent = text.IndexOf('%');
        ReadOnlySpan<char> literal = percent < 0 ? text : text[..percent];
        if (literal.Length is < 2 or > MaxIPv6Length || literal.ContainsAnyExcept(s_ipv6Chars)
            || !literal.Contains(':'))
        {
            return false;
        }

        if (percent >= 0)
        {
            ReadOnlySpan<char> zone = text[(percent + 1)..];
            if (zone.IsEmpty || zone.Length > MaxZoneLength || zone.ContainsAnyExcept(s_zoneChars))
            {
                return false;
            }
        }

        // Everything around the literal has been checked; the platform parser handles the IPv6 grammar
        // (RFC 4291 §2.2) and maps a zone name to its interface index.
        return IPAddress.TryParse(text, out address) && address.AddressFamily == AddressFamily.InterNetworkV6;
    }

    private static bool IsNumericLabel(ReadOnlySpan<char> label)
    {
        if (label.IsEmpty)
        {
            return false;
        }

        if (label.Length >= 2 && label[0] == '0' && (label[1] == 'x' || label[1] == 'X'))
        {
            return !label[2..].ContainsAnyExcept(s_hexDigits);
        }

        return !label.ContainsAnyExceptInRange('0', '9');
    }

    private static bool IsValidName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || name.Length > MaxNameLength)
        {
            return false;
        }

        foreach (Range range in name.Split('.'))
        {
            ReadOnlySpan<char> label = name[range];
            if (label.IsEmpty || label.Length > MaxLabelLength || label.ContainsAnyExcept(s_labelChars)
                || label[0] == '-' || label[^1] == '-')
            {
                return false;
            }
        }

        return true;
    }
}
