using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Passage.Configuration;

/// <summary>Where a front door listens: <c>127.0.0.1:9443</c>, <c>[::]:443</c>, <c>localhost:9443</c>; port 0 asks the OS.</summary>
public static class ListenEndpoint
{
    /// <summary>
    /// Parses a listen address. Host names other than <c>localhost</c> are refused: a listener binds an address. An
    /// IPv4-mapped IPv6 address (<c>[::ffff:127.0.0.1]</c>, RFC 4291 §2.5.5.2) is read as the IPv4 address it maps: an
    /// IPv6 socket that is not dual-mode cannot bind it, and checks such as loopback's already go by the IPv4 address.
    /// </summary>
    public static bool TryParse(string? text, [NotNullWhen(true)] out IPEndPoint? endpoint, out string? error)
    {
        endpoint = null;
        if (!HostPort.TrySplit(text, out var host, out var portText, out error))
        {
            return false;
        }
        if (portText != "0" && !HostPort.TryParsePort(portText, out _))
        {
            error = $"'{portText}' is not a port (0-65535)";
            return false;
        }
        var port = int.Parse(portText, System.Globalization.CultureInfo.InvariantCulture);
        IPAddress? address;
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            address = IPAddress.Loopback;
        }
        else if (host is "" or "*")
        {
            address = IPAddress.IPv6Any;
        }
        else if (!IPAddress.TryParse(host, out address))
        {
            error = $"'{host}' is not an IP address (listen on an address, e.g. 127.0.0.1 or [::])";
            return false;
        }
        endpoint = new IPEndPoint(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port);
        return true;
    }
}
