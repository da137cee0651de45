using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// Reads the authority-form request target of a CONNECT (RFC 9112 §3.2.3: <c>authority-form = uri-host ":" port</c>)
/// strictly: a host, a colon and a port, nothing else.
/// </summary>
/// <remarks>
/// <list type="bullet">
/// <item>No userinfo (<c>user@host:443</c>; RFC 9112 §3.2.3 has none), no path, query or fragment.</item>
/// <item>The port is required (unlike in a URI, RFC 3986 §3.2.3), 1 to 5 decimal digits, 1 to 65535.</item>
/// <item>An IPv6 literal is bracketed and holds hex digits, colons and dots only; a zone
/// (RFC 6874 <c>%25</c>) is refused: it names a link-local interface, which no relay policy allows.</item>
/// <item>A name or IPv4 literal holds letters, digits, <c>-</c>, <c>.</c> and <c>_</c>, at most 254 bytes (253 and
/// a final dot); its finer syntax is left to the caller's host rules, which also normalize case.</item>
/// </list>
/// </remarks>
internal static class ConnectTarget
{
    // RFC 1035 §2.3.4: 253 characters of name, plus an optional final dot.
    private const int MaxHostLength = 254;

    // "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255"
    private const int MaxIPv6Length = 45;

    /// <summary>
    /// Splits <paramref name="target"/> into its host (without brackets) and port. The host comes back as a range,
    /// so that no string is made until the whole head has arrived.
    /// </summary>
    /// <param name="target">The request target, as it appeared between the two spaces of the request line.</param>
    /// <param name="host">Where the host, as written and without brackets, lies in <paramref name="target"/>; empty on failure.</param>
    /// <param name="port">The port; 0 on failure.</param>
    /// <param name="detail">On failure, a constant reason that holds none of the target's bytes.</param>
    /// <returns>Whether the target is a valid authority-form.</returns>
    public static bool TryParse(ReadOnlySpan<byte> target, out Range host, out int port, out string detail) =>
        TryParse(target, portRequired: true, out host, out port, out detail);

    /// <summary>
    /// As <see cref="TryParse(ReadOnlySpan{byte}, out Range, out int, out string)"/>, for a target that came as text (each
    /// character one byte, Latin-1), such as an HTTP/2 CONNECT's <c>:authority</c>: the host comes back as a string.
    /// </summary>
    /// <param name="target">The request target.</param>
    /// <param name="host">The host, as written and without brackets; null on failure.</param>
    /// <param name="port">The port; 0 on failure.</param>
    /// <param name="detail">On failure, a constant reason that holds none of the target's bytes.</param>
    /// <returns>Whether the target is a valid authority-form.</returns>
    public static bool TryParse(string target, [NotNullWhen(true)] out string? host, out int port, out string detail)
    {
        var bytes = Encoding.Latin1.GetBytes(target);
        host = TryParse(bytes, out var range, out port, out detail) ? Encoding.ASCII.GetString(bytes.AsSpan(range)) : null;
        return host is not null;
    }

    /// <summary>
    /// Reads an authority whose port may be left out (RFC 3986 §3.2: <c>host [ ":" port ]</c>), such as an HTTP/2
    /// request's <c>:authority</c>, by the same rules as <see cref="TryParse(ReadOnlySpan{byte}, out Range, out int, out string)"/>
    /// otherwise: no userinfo, nothing after the port, a port from 1 to 65535 when given.
    /// </summary>
    /// <param name="authority">The authority, as received.</param>
    /// <param name="host">Where the host, as written and without brackets, lies in <paramref name="authority"/>; empty on failure.</param>
    /// <param name="port">The port; 0 when left out or on failure.</param>
    /// <param name="detail">On failure, a constant reason that holds none of the authority's bytes.</param>
    /// <returns>Whether the authority is valid.</returns>
    public static bool TryParseAuthority(ReadOnlySpan<byte> authority, out Range host, out int port, out string detail) =>
        TryParse(authority, portRequired: false, out host, out port, out detail);

    private static bool TryParse(ReadOnlySpan<byte> target, bool portRequired, out Range host, out int port, out string detail)
    {
        host = default;
        port = 0;
        int hostStart;
        ReadOnlySpan<byte> hostBytes;
        ReadOnlySpan<byte> rest;
        if (target.IsEmpty)
        {
            // An authority whose port may be left out has, when empty, an empty host (RFC 3986 §3.2.2), as "http:///a" has.
            detail = portRequired ? "empty request target" : "request target has no host";
            return false;
        }

        if (target[0] == (byte)'[')
        {
            int close = target.IndexOf((byte)']');
            if (close < 0)
            {
                detail = "unclosed IPv6 literal in the request target";
                return false;
            }

            hostStart = 1;
            hostBytes = target[1..close];
            if (hostBytes.Length is < 2 or > MaxIPv6Length || hostBytes.IndexOfAnyExcept(Http1Syntax.IPv6Chars) >= 0 || !hostBytes.Contains((byte)':'))
            {
                detail = "request target has a malformed IPv6 literal";
                return false;
            }

            rest = target[(close + 1)..];
        }
        else
        {
            int colon = target.IndexOf((byte)':');
            hostStart = 0;
            hostBytes = colon < 0 ? target : target[..colon];
            if (hostBytes.IsEmpty)
            {
                detail = "request target has no host";
                return false;
            }

            if (hostBytes.IndexOfAnyExcept(Http1Syntax.HostNameChars) >= 0)
            {
                detail = "request target is not in authority-form (host:port)";
                return false;
            }

            if (hostBytes.Length > MaxHostLength)
            {
                detail = "request target host is too long";
                return false;
            }

            rest = colon < 0 ? default : target[colon..];
        }

        if (!rest.IsEmpty || portRequired)
        {
            if (rest.IsEmpty || rest[0] != (byte)':')
            {
                detail = rest.IsEmpty ? "request target has no port" : "request target is not in authority-form (host:port)";
                return false;
            }

            if (!TryParsePort(rest[1..], out port))
            {
                // A URI's delimiters after the colon are a URI sent for an authority (https://host:443, host:443/path),
                // not a port that is out of range.
                detail = rest[1..].IndexOfAny(UriDelimiters) >= 0
                    ? "request target is not in authority-form (host:port)"
                    : "request target port is not a number from 1 to 65535";
                return false;
            }
        }

        host = new Range(hostStart, hostStart + hostBytes.Length);
        detail = "";
        return true;
    }

    /// <summary>What ends a URI's authority or begins its userinfo (RFC 3986 §3.2), and a second port's colon.</summary>
    private static ReadOnlySpan<byte> UriDelimiters => "/?#@:"u8;

    // RFC 3986 §3.2.3: port = *DIGIT; a CONNECT needs one (RFC 9110 §9.3.6), and 0 is no TCP port to dial.
    private static bool TryParsePort(ReadOnlySpan<byte> digits, out int port)
    {
        port = 0;
        if (digits.Length is < 1 or > 5)
        {
            return false;
        }

        foreach (byte b in digits)
        {
            if (b is < (byte)'0' or > (byte)'9')
            {
                port = 0;
                return false;
            }

            port = (port * 10) + (b - '0');
        }

        if (port is < 1 or > 65535)
        {
            port = 0;
            return false;
        }

        return true;
    }
}
