using System.Buffers.Binary;
using System.Net;
using Passage.Relay.Destinations;

namespace Passage.Relay;

/// <summary>
/// Who counts as one client for the per-client limits: an IPv4 address, or an IPv6 address's /64. A host on IPv6 is
/// given a whole /64 (SLAAC, privacy addresses, RFC 8981), so it can open each connection from an address of its own,
/// and a limit keyed by the whole address would not hold it. An IPv6 address that carries an IPv4 one (NAT64, 6to4,
/// Teredo) counts as that IPv4 address.
/// </summary>
internal static class ClientKey
{
    /// <summary>
    /// The key <paramref name="address"/> is counted under: an IPv4 address (mapped or not) itself, an IPv6 address's
    /// /64, a link-local IPv6 address itself, and an IPv6 address that carries the IPv4 address of the host it comes from
    /// as that IPv4 address.
    /// </summary>
    public static IPAddress Of(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        // Every link-local address shares fe80::/64: there the whole address (and its interface) is the client.
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || address.IsIPv6LinkLocal)
        {
            return address;
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        if (CarriedIPv4(bytes) is { } carried)
        {
            return carried;
        }
        bytes[8..].Clear();
        return new IPAddress(bytes);
    }

    /// <summary>
    /// The IPv4 address of the host an IPv6 address of one of the forms that carry one comes from, null for other forms.
    /// Keyed by its /64, each form lumps many IPv4 hosts together or gives one many keys: every IPv4 client of a NAT64 or
    /// SIIT translator shares 64:ff9b::/64, and the Teredo clients of one server their server's /64, while a 6to4 site
    /// holds a /48 for its one IPv4 address.
    /// </summary>
    private static IPAddress? CarriedIPv4(ReadOnlySpan<byte> bytes)
    {
        // 64:ff9b::/96 (RFC 6052), and ::/96 but :: and ::1, IPv4-compatible (RFC 4291 §2.5.5.1, deprecated).
        if (bytes[..12].SequenceEqual(AddressClassifier.Nat64WellKnownPrefix)
            || (bytes[..12].IndexOfAnyExcept((byte)0) < 0 && BinaryPrimitives.ReadUInt32BigEndian(bytes[12..]) > 1))
        {
            return new IPAddress(bytes[12..]);
        }
        // 2002::/16, 6to4 (RFC 3056 §2): the site's IPv4 address follows the prefix.
        if (bytes[0] == 0x20 && bytes[1] == 0x02)
        {
            return new IPAddress(bytes[2..6]);
        }
        // 2001::/32, Teredo (RFC 4380 §4): the client's IPv4 address (its NAT's), inverted, in the last 32 bits.
        if (bytes[0] == 0x20 && bytes[1] == 0x01 && bytes[2] == 0 && bytes[3] == 0)
        {
            Span<byte> client = stackalloc byte[4];
            for (var i = 0; i < 4; i++)
            {
                client[i] = (byte)~bytes[12 + i];
            }
            return new IPAddress(client);
        }
        return null;
    }
}
