using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Passage.Identity;

/// <summary>
/// Where a peer is and who it must be: <c>ID@host:port</c>, e.g.
/// <c>mfrggzdf...@relay.example:443</c> or <c>mfrggzdf...@[2001:db8::1]:443</c>.
/// The connection is accepted only if the peer's certificate key hashes to <see cref="NodeId"/>.
/// </summary>
public sealed record PeerAddress
{
    /// <summary>Creates an address, validating each part.</summary>
    /// <param name="nodeId">The ID the peer must prove.</param>
    /// <param name="host">A DNS name or an IP address; IPv6 without brackets.</param>
    /// <param name="port">A TCP port, 1 to 65535.</param>
    /// <exception cref="ArgumentException">The host or port is not valid.</exception>
    public PeerAddress(NodeId nodeId, string host, int port)
    {
        ArgumentNullException.ThrowIfNull(nodeId);
        ArgumentNullException.ThrowIfNull(host);
        if (ValidateHost(host) is { } hostError)
        {
            throw new ArgumentException(hostError, nameof(host));
        }
        if (port is < IPEndPoint.MinPort + 1 or > IPEndPoint.MaxPort)
        {
            throw new ArgumentOutOfRangeException(nameof(port), port, "A port is a number from 1 to 65535.");
        }
        NodeId = nodeId;
        Host = host;
        Port = port;
    }

    /// <summary>The ID the peer must prove in its TLS handshake.</summary>
    public NodeId NodeId { get; }

    /// <summary>The DNS name or IP address to connect to; an IPv6 address without brackets.</summary>
    public string Host { get; }

    /// <summary>The TCP port, 1 to 65535.</summary>
    public int Port { get; }

    /// <summary>
    /// Parses <c>ID@host:port</c>. On failure returns false with a message that says what is
    /// wrong; never throws.
    /// </summary>
    public static bool TryParse(
        [NotNullWhen(true)] string? text,
        [NotNullWhen(true)] out PeerAddress? address,
        [NotNullWhen(false)] out string? error)
    {
        address = null;
        error = null;
        if (string.IsNullOrWhiteSpace(text))
        {
            error = "A peer address is empty; expected ID@host:port.";
            return false;
        }
        var at = text.IndexOf('@', StringComparison.Ordinal);
        if (at < 0)
        {
            error = $"'{text}' has no '@'; a peer address is ID@host:port.";
            return false;
        }
        var idText = text[..at];
        if (!NodeId.TryParse(idText, out var id))
        {
            error = $"'{idText}' in '{text}' is not a node ID: expected {NodeId.TextLength} characters of base32 (a-z, 2-7).";
            return false;
        }
        var hostPort = text[(at + 1)..];
        string host;
        string portText;
        if (hostPort.StartsWith('['))
        {
            // RFC 3986 §3.2.2: an IPv6 literal is enclosed in brackets so its colons are not read as the port separator.
            var close = hostPort.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                error = $"'{hostPort}' in '{text}' opens '[' without a closing ']'.";
                return false;
            }
            host = hostPort[1..close];
            if (!HostName.TryParseIpLiteral(host, out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                error = $"'{host}' in '{text}' is in brackets but is not an IPv6 address.";
                return false;
            }
            var rest = hostPort[(close + 1)..];
            if (!rest.StartsWith(':'))
            {
                error = $"'{text}' has no port after ']'; a peer address is ID@[ipv6]:port.";
                return false;
            }
            portText = rest[1..];
        }
        else
        {
            var colon = hostPort.LastIndexOf(':');
            if (colon < 0)
            {
                error = $"'{text}' has no port; a peer address is ID@host:port.";
                return false;
            }
            host = hostPort[..colon];
            portText = hostPort[(colon + 1)..];
            if (host.Contains(':', StringComparison.Ordinal))
            {
                error = $"'{host}' in '{text}' looks like an IPv6 address; write it in brackets: ID@[{host}]:{portText}.";
                return false;
            }
            if (ValidateHost(host) is { } hostError)
            {
                error = $"{hostError} (in '{text}')";
                return false;
            }
        }
        if (portText.Length is 0 or > 5
            || !portText.All(char.IsAsciiDigit)
            || !int.TryParse(portText, NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            || port is < 1 or > IPEndPoint.MaxPort)
        {
            error = $"'{portText}' in '{text}' is not a port; a port is a number from 1 to 65535.";
            return false;
        }
        address = new PeerAddress(id, host, port);
        return true;
    }

    /// <summary>Parses <c>ID@host:port</c>.</summary>
    /// <exception cref="FormatException">The text is not a peer address; the message says why.</exception>
    public static PeerAddress Parse(string text) =>
        TryParse(text, out var address, out var error) ? address : throw new FormatException(error);

    /// <summary><c>ID@host:port</c>, with an IPv6 host in brackets; parses back to an equal address.</summary>
    public override string ToString() =>
        Host.Contains(':', StringComparison.Ordinal)
            ? $"{NodeId}@[{Host}]:{Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{NodeId}@{Host}:{Port.ToString(CultureInfo.InvariantCulture)}";

    private static string? ValidateHost(string host) =>
        host.Length == 0 ? "The host is empty."
        : HostName.TryParseIpLiteral(host, out _) || HostName.IsDnsName(host) ? null
        : $"'{host}' is not a valid host name or IP address.";
}
