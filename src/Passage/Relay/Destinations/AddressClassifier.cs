using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// Sorts an IP address into an <see cref="AddressCategory"/>. Pure and allocation-light; scope IDs
/// are ignored.
/// </summary>
/// <remarks>
/// <para>
/// The ranges follow the IANA IPv4 and IPv6 Special-Purpose Address Registries (RFC 6890 and the
/// RFCs that added entries since). Where the registry marks a block "not globally reachable", the
/// block is refused here. A few registry entries marked globally reachable sit inside such a block
/// (the PCP and TURN anycast addresses in <c>192.0.0.0/24</c> and <c>2001::/23</c>, AMT, AS112-v6,
/// ORCHIDv2): they are service addresses, not destinations a relay should forward to, so the whole
/// block stays <see cref="AddressCategory.Reserved"/> and an operator who needs one names it with
/// <c>--allow-network</c>.
/// </para>
/// <para>
/// IPv6 forms that carry an IPv4 address are classified by where the packets really go:
/// <list type="bullet">
/// <item><c>::ffff:0:0/96</c> IPv4-mapped (RFC 4291 §2.5.5.2): a dual-stack socket connects to the
/// embedded IPv4 address, so the embedded address decides (<c>::ffff:127.0.0.1</c> is Loopback).</item>
/// <item><c>::/96</c> IPv4-compatible (RFC 4291 §2.5.5.1, deprecated): the embedded address decides
/// when it is not public; a public one is <see cref="AddressCategory.Reserved"/>, because the form is
/// deprecated and not routable. <c>::</c> and <c>::1</c> are Unspecified and Loopback.</item>
/// <item><c>64:ff9b::/96</c> NAT64 well-known prefix (RFC 6052 §2.1): a NAT64 gateway forwards to the
/// embedded address, so it decides. RFC 6052 §3.1 forbids this prefix for non-global IPv4 addresses,
/// so a non-public embedded address is refused with its own category.</item>
/// <item><c>2002::/16</c> 6to4 (RFC 3056 §2): the embedded address is the tunnel endpoint the packets
/// are sent to; a non-public one decides the category, otherwise the address is Public.</item>
/// <item><c>2001::/32</c> Teredo (RFC 4380 §4): packets go by UDP to the client's mapped address
/// (bits 96–127, inverted) and the server (bits 32–63); if either is not public, its category decides
/// (client first), otherwise Public.</item>
/// </list>
/// The local-use translation prefix <c>64:ff9b:1::/48</c> (RFC 8215) places the IPv4 address at an
/// operator-chosen position, so it cannot be read; it is Reserved.
/// </para>
/// </remarks>
internal static class AddressClassifier
{
    // First match wins, so exact addresses come before the ranges that hold them.
    private static readonly (IPNetwork Network, AddressCategory Category)[] s_ipv4 =
    [
        // Cloud instance metadata endpoints.
        (IPNetwork.Parse("169.254.169.254/32"), AddressCategory.Metadata), // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle, ...
        (IPNetwork.Parse("169.254.170.2/32"), AddressCategory.Metadata),   // AWS ECS task metadata and credentials
        (IPNetwork.Parse("169.254.170.23/32"), AddressCategory.Metadata),  // AWS EKS Pod Identity Agent (credentials)
        (IPNetwork.Parse("169.254.0.23/32"), AddressCategory.Metadata),    // Tencent Cloud metadata
        (IPNetwork.Parse("169.254.42.42/32"), AddressCategory.Metadata),   // Scaleway metadata
        (IPNetwork.Parse("100.100.100.200/32"), AddressCategory.Metadata), // Alibaba Cloud metadata
        (IPNetwork.Parse("168.63.129.16/32"), AddressCategory.Metadata),   // Azure WireServer (host agent); public space, reachable only inside Azure
        (IPNetwork.Parse("192.0.0.192/32"), AddressCategory.Metadata),     // Oracle Cloud legacy metadata

        (IPNetwork.Parse("0.0.0.0/32"), AddressCategory.Unspecified),      // RFC 1122 §3.2.1.3 "this host"
        (IPNetwork.Parse("0.0.0.0/8"), AddressCategory.Reserved),          // RFC 791, RFC 6890 §2.2.2 "this network"
        (IPNetwork.Parse("10.0.0.0/8"), AddressCategory.Private),          // RFC 1918
        (IPNetwork.Parse("100.64.0.0/10"), AddressCategory.SharedCgnat),   // RFC 6598
        (IPNetwork.Parse("127.0.0.0/8"), AddressCategory.Loopback),        // RFC 1122 §3.2.1.3
        (IPNetwork.Parse("169.254.0.0/16"), AddressCategory.LinkLocal),    // RFC 3927
        (IPNetwork.Parse("172.16.0.0/12"), AddressCategory.Private),       // RFC 1918
        (IPNetwork.Parse("192.0.0.0/24"), AddressCategory.Reserved),       // RFC 6890 §2.2.2 IETF protocol assignments (DS-Lite, PCP/TURN anycast, NAT64 discovery)
        (IPNetwork.Parse("192.0.2.0/24"), AddressCategory.Reserved),       // RFC 5737 TEST-NET-1
        (IPNetwork.Parse("192.88.99.0/24"), AddressCategory.Reserved),     // RFC 7526 deprecated 6to4 relay anycast
        (IPNetwork.Parse("192.168.0.0/16"), AddressCategory.Private),      // RFC 1918
        (IPNetwork.Parse("198.18.0.0/15"), AddressCategory.Reserved),      // RFC 2544 benchmarking
        (IPNetwork.Parse("198.51.100.0/24"), AddressCategory.Reserved),    // RFC 5737 TEST-NET-2
        (IPNetwork.Parse("203.0.113.0/24"), AddressCategory.Reserved),     // RFC 5737 TEST-NET-3
        (IPNetwork.Parse("224.0.0.0/4"), AddressCategory.Multicast),       // RFC 5771
        (IPNetwork.Parse("240.0.0.0/4"), AddressCategory.Reserved),        // RFC 1112 §4 future use; holds 255.255.255.255 limited broadcast (RFC 919, RFC 8190)
    ];

    private static readonly (IPNetwork Network, AddressCategory Category)[] s_ipv6 =
    [
        (IPNetwork.Parse("fd00:ec2::254/128"), AddressCategory.Metadata),  // AWS instance metadata over IPv6
        (IPNetwork.Parse("fd00:ec2::23/128"), AddressCategory.Metadata),   // AWS EKS Pod Identity Agent over IPv6 (credentials)
        (IPNetwork.Parse("fd20:ce::254/128"), AddressCategory.Metadata),   // Google Cloud metadata server over IPv6
        (IPNetwork.Parse("fd00:42::42/128"), AddressCategory.Metadata),    // Scaleway metadata over IPv6
        (IPNetwork.Parse("fd00:c1::a9fe:a9fe/128"), AddressCategory.Metadata), // Oracle Cloud metadata over IPv6
        (IPNetwork.Parse("fd00:a9fe:a9fe::1/128"), AddressCategory.Metadata),  // Akamai (Linode) metadata over IPv6
        (IPNetwork.Parse("fd00:100::100:200/128"), AddressCategory.Metadata),  // Alibaba Cloud metadata over IPv6
        (IPNetwork.Parse("ff00::/8"), AddressCategory.Multicast),          // RFC 4291 §2.7
        (IPNetwork.Parse("fe80::/10"), AddressCategory.LinkLocal),         // RFC 4291 §2.5.6
        (IPNetwork.Parse("fec0::/10"), AddressCategory.Reserved),          // RFC 3879 deprecated site-local
        (IPNetwork.Parse("fc00::/7"), AddressCategory.Private),            // RFC 4193 unique local
        (IPNetwork.Parse("64:ff9b:1::/48"), AddressCategory.Reserved),     // RFC 8215 local-use IPv4/IPv6 translation
        (IPNetwork.Parse("100::/64"), AddressCategory.Reserved),           // RFC 6666 discard-only
        (IPNetwork.Parse("2001::/23"), AddressCategory.Reserved),          // RFC 2928 IETF protocol assignments; holds 2001:2::/48 benchmarking (RFC 5180), 2001:10::/28 ORCHID (RFC 4843)
        (IPNetwork.Parse("2001:db8::/32"), AddressCategory.Reserved),      // RFC 3849 documentation
        (IPNetwork.Parse("3fff::/20"), AddressCategory.Reserved),          // RFC 9637 documentation
        (IPNetwork.Parse("2000::/3"), AddressCategory.Public),             // RFC 4291 §2.4 global unicast
        (IPNetwork.Parse("::/0"), AddressCategory.Reserved),               // everything else is unassigned or special (IANA IPv6 address space): 5f00::/16 SRv6 (RFC 9602), ::ffff:0:0:0/96, ...
    ];

    /// <summary>Classifies <paramref name="address"/>. The scope ID of an IPv6 address is ignored.</summary>
    /// <param name="address">An IPv4 or IPv6 address.</param>
    /// <returns>The category that decides whether the relay may connect to it.</returns>
    public static AddressCategory Classify(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.AddressFamily switch
        {
            AddressFamily.InterNetwork => Lookup(s_ipv4, address, AddressCategory.Public),
            AddressFamily.InterNetworkV6 => ClassifyIPv6(address),
            _ => throw new ArgumentException($"Not an IP address family: {address.AddressFamily}.", nameof(address)),
        };
    }

    private static AddressCategory ClassifyIPv6(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);

        if (address.IsIPv4MappedToIPv6)
        {
            return Classify(address.MapToIPv4());
        }

        if (bytes[..12].IndexOfAnyExcept((byte)0) < 0)
        {
            // ::/96 — the unspecified and loopback addresses, then the deprecated IPv4-compatible form.
            uint low = (uint)(bytes[12] << 24 | bytes[13] << 16 | bytes[14] << 8 | bytes[15]);
            if (low == 0)
            {
                return AddressCategory.Unspecified;
            }

            if (low == 1)
            {
                return AddressCategory.Loopback;
            }

            AddressCategory compatible = Classify(new IPAddress(bytes[12..]));
            return compatible == AddressCategory.Public ? AddressCategory.Reserved : compatible;
        }

        if (bytes[..12].SequenceEqual(Nat64WellKnownPrefix))
        {
            return Classify(new IPAddress(bytes[12..]));
        }

        if (bytes[0] == 0x20 && bytes[1] == 0x02)
        {
            return Classify(new IPAddress(bytes[2..6])); // 6to4 relay; Public when it is.
        }

        if (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0 && bytes[3] == 0)
        {
            return ClassifyTeredo(bytes);
        }

        return Lookup(s_ipv6, address, AddressCategory.Reserved);
    }

    private static AddressCategory ClassifyTeredo(ReadOnlySpan<byte> bytes)
    {
        // RFC 4380 §4: prefix (32) | server IPv4 (32) | flags (16) | port ^ 0xffff (16) | client IPv4 ^ 0xffffffff (32).
        Span<byte> client = stackalloc byte[4];
        for (int i = 0; i < 4; i++)
        {
            client[i] = (byte)~bytes[12 + i];
        }

        AddressCategory clientCategory = Classify(new IPAddress(client));
        if (clientCategory != AddressCategory.Public)
        {
            return clientCategory;
        }

        return Classify(new IPAddress(bytes[4..8]));
    }

    private static AddressCategory Lookup(
        (IPNetwork Network, AddressCategory Category)[] table, IPAddress address, AddressCategory otherwise)
    {
        foreach ((IPNetwork network, AddressCategory category) in table)
        {
            if (network.Contains(address))
            {
                return category;
            }
        }

        return otherwise;
    }

    /// <summary>RFC 6052 §2.1: the first 96 bits of 64:ff9b::/96.</summary>
    internal static ReadOnlySpan<byte> Nat64WellKnownPrefix => [0x00, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0];
}
