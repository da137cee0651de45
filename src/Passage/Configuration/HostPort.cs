using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;

namespace Passage.Configuration;

/// <summary>A host (name or address literal) and a port: <c>example.org:443</c>, <c>[2001:db8::1]:443</c>.</summary>
/// <param name="Host">A host name, lower-case without a trailing dot, or an IP address literal without brackets.</param>
/// <param name="Port">1 to 65535.</param>
public readonly record struct HostPort(string Host, int Port)
{
    /// <summary>Parses <c>host:port</c>; IPv6 literals must be in brackets. An error text on failure.</summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out HostPort? value, out string? error)
    {
        value = null;
        if (!TrySplit(text, out var host, out var portText, out error))
        {
            return false;
        }
        if (host.Length == 0)
        {
            error = "the host is missing";
            return false;
        }
        if (!TryParsePort(portText, out var port))
        {
            error = $"'{portText}' is not a port (1-65535)";
            return false;
        }
        value = new HostPort(Normalize(host), port);
        return true;
    }

    /// <summary>Splits <c>host:port</c> (host possibly empty or bracketed) without validating either part.</summary>
    internal static bool TrySplit(string? text, out string host, out string port, out string? error)
    {
        host = port = "";
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "expected host:port";
            return false;
        }
        var s = text.Trim();
        int colon;
        if (s.StartsWith('['))
        {
            var close = s.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= s.Length || s[close + 1] != ':')
            {
                error = "expected [ipv6]:port";
                return false;
            }
            host = s[1..close];
            colon = close + 1;
        }
        else
        {
            colon = s.LastIndexOf(':');
            if (colon < 0)
            {
                error = "expected host:port";
                return false;
            }
            host = s[..colon];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                error = "an IPv6 address must be in brackets, as [2001:db8::1]:443";
                return false;
            }
        }
        port = s[(colon + 1)..];
        return true;
    }

    /// <summary>Parses a port number 1 to 65535 (digits only).</summary>
    internal static bool TryParsePort(string text, out int port) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is >= 1 and <= 65535;

    /// <summary>Lower-cases a name and removes a trailing dot; leaves address literals as they are.</summary>
    internal static string Normalize(string host) =>
        IPAddress.TryParse(host, out _) ? host : host.TrimEnd('.').ToLowerInvariant();

    /// <inheritdoc />
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal) ? $"[{Host}]:{Port}" : $"{Host}:{Port}";
}
