using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// A destination host in the one form rules compare: a name lower-case without its final dot, or an
/// address in its canonical text (IPv4 dotted quad; IPv6 compressed, without brackets or zone). An
/// IPv4-mapped IPv6 address becomes its IPv4 address, since that is where a dual-stack socket
/// connects; the zone is dropped so that <c>fe80::1%eth0</c> cannot slip past a rule for <c>fe80::1</c>.
/// </summary>
/// <param name="Text">The normalized host.</param>
/// <param name="IsAddress">Whether the host is an address literal rather than a name.</param>
internal readonly record struct RuleHost(string Text, bool IsAddress)
{
    /// <summary>Normalizes <paramref name="host"/> through <see cref="HostSyntax"/>.</summary>
    /// <param name="host">A host as a request names it: a name, or a literal in any form, bracketed or not.</param>
    /// <param name="normalized">The normalized host, when it is valid.</param>
    /// <returns>Whether <paramref name="host"/> is a valid name or address literal.</returns>
    public static bool TryCreate(string host, out RuleHost normalized)
    {
        switch (HostSyntax.Parse(host, out IPAddress? address))
        {
            case HostKind.Name:
                normalized = new RuleHost(HostSyntax.ToMapKey(host).ToLowerInvariant(), IsAddress: false);
                return true;
            case HostKind.Address:
                normalized = new RuleHost(Canonical(address!), IsAddress: true);
                return true;
            default:
                normalized = default;
                return false;
        }
    }

    /// <summary>The canonical text of an address, as <see cref="RuleHost"/> describes.</summary>
    public static string Canonical(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4().ToString();
        }

        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0)
        {
            return new IPAddress(address.GetAddressBytes()).ToString();
        }

        return address.ToString();
    }
}
