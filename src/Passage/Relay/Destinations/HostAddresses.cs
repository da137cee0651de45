using System.Collections.Frozen;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// This host's own addresses, those of its network interfaces. A connection to one never leaves the host: its kernel
/// delivers it to whatever listens there, a service bound to every address included, as it would a connection to
/// loopback; and a host firewall that guards the interface from outside lets it through, as local traffic.
/// </summary>
/// <remarks>
/// Read again, when asked, once the last reading is a second old: addresses come and go (DHCP, a VPN, a container's
/// network). A reading that fails, or that would take descriptors kept free for the runtime, keeps the one before.
/// </remarks>
internal static class HostAddresses
{
    private const long RereadAfterMilliseconds = 1000;

    private static volatile Reading? s_current;

    /// <summary>Whether <paramref name="address"/> (its scope ignored, an IPv4-mapped one as its IPv4) is one of this host's.</summary>
    public static bool Contains(IPAddress address)
    {
        IPAddress key = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : WithoutScope(address);
        return Current().Contains(key);
    }

    private static FrozenSet<IPAddress> Current()
    {
        Reading? reading = s_current;
        long now = Environment.TickCount64;
        if (reading is null || now - reading.At >= RereadAfterMilliseconds)
        {
            // Two callers may read at once; either reading will do.
            reading = new Reading(Read() ?? reading?.Addresses ?? FrozenSet<IPAddress>.Empty, now);
            s_current = reading;
        }

        return reading.Addresses;
    }

    private static FrozenSet<IPAddress>? Read()
    {
        // The reading takes a netlink socket and files, two at once at most, that it cannot check itself: not from the
        // descriptors kept free for the runtime (as getaddrinfo, see LookupThreads).
        if (Transport.OpenFileLimit.NextInHeadroom(2))
        {
            return null;
        }

        try
        {
            return NetworkInterface.GetAllNetworkInterfaces()
                .SelectMany(i => i.GetIPProperties().UnicastAddresses)
                .Select(a => WithoutScope(a.Address))
                .ToFrozenSet();
        }
        catch (Exception exception) when (exception is NetworkInformationException or IOException or UnauthorizedAccessException or SocketException)
        {
            // Out of descriptors for the netlink socket or the files it reads, say: the last reading stands.
            return null;
        }
    }

    private static IPAddress WithoutScope(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0 ? new IPAddress(address.GetAddressBytes()) : address;

    private sealed record Reading(FrozenSet<IPAddress> Addresses, long At);
}
