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
/// Read again once the last reading is a second old: addresses come and go (DHCP, a VPN, a container's network, IPv6
/// privacy addresses). The relay makes the first reading as it starts (<see cref="ReadNow"/>), so that no dial waits
/// for it. While dials keep coming, later ones run on the thread pool, one at a time, while the checks go on with the
/// reading before: a reading opens a netlink socket and a few files per interface, which must not be paid on the dial
/// path, nor by every dial that finds the reading old at once (a host with hundreds of container interfaces takes
/// milliseconds: 20 for 300). A reading two seconds old or more is not used: it means no dial came for a while, and the address the
/// host took meanwhile would be opened to the first dial after the pause; that dial reads the interfaces itself, and
/// the checks that come while it does wait for its reading (a quiet relay pays it, not a busy one). So no check uses a
/// reading more than two seconds old, but for this: a reading that fails, or that would take descriptors kept free for
/// the runtime, keeps the one before as if it were made then (the next is tried off the dial path, by the first check a
/// second later). Until one has succeeded, every check tries again and, while none can be made, holds every
/// address as this host's: a relay that cannot tell its own addresses must not open them (a host out of descriptors has
/// none for the dial either).
/// </remarks>
internal sealed class HostAddresses
{
    private static readonly TimeSpan s_rereadAfter = TimeSpan.FromSeconds(1);

    /// <summary>How old a reading may be and still be used, while the one after it is made off the dial path.</summary>
    private static readonly TimeSpan s_usableFor = TimeSpan.FromSeconds(2);

    private static readonly HostAddresses s_system = new(ReadInterfaces, TimeProvider.System);

    private readonly Func<FrozenSet<IPAddress>?> _read;
    private readonly TimeProvider _time;
    /// <summary>Held while a check reads the interfaces itself: the first reading, or one after a reading too old to use.</summary>
    private readonly Lock _reading = new();
    private volatile Reading? _current;
    private int _rereading;

    /// <summary>Creates a view of the addresses that <paramref name="read"/> returns (null when it failed), read again on <paramref name="time"/>.</summary>
    internal HostAddresses(Func<FrozenSet<IPAddress>?> read, TimeProvider time)
    {
        _read = read;
        _time = time;
    }

    /// <summary>Whether a reading off the dial path is under way (for tests).</summary>
    internal bool Rereading => Volatile.Read(ref _rereading) != 0;

    /// <summary>Whether <paramref name="address"/> (its scope ignored, an IPv4-mapped one as its IPv4) is one of this host's.</summary>
    public static bool Contains(IPAddress address) => s_system.Holds(address);

    /// <summary>Makes the first reading of this host's addresses now, if none was made yet, rather than at the first check.</summary>
    /// <returns>Whether a reading is at hand; if not, the checks hold every address as this host's until one is.</returns>
    public static bool ReadNow() => s_system.Current() is not null;

    /// <summary>
    /// Whether <paramref name="address"/> (its scope ignored, an IPv4-mapped one as its IPv4) is in the current reading;
    /// true while no reading could be made.
    /// </summary>
    internal bool Holds(IPAddress address)
    {
        IPAddress key = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : WithoutScope(address);
        return Current()?.Contains(key) ?? true;
    }

    private FrozenSet<IPAddress>? Current()
    {
        Reading? reading = _current;
        var age = reading is null ? TimeSpan.Zero : _time.GetElapsedTime(reading.At);
        if (reading is null || age >= s_usableFor)
        {
            lock (_reading)
            {
                // Another check may have read them while this one waited.
                reading = _current;
                if (reading is null)
                {
                    var at = _time.GetTimestamp();
                    if (_read() is { } addresses)
                    {
                        _current = reading = new Reading(addresses, at);
                    }
                }
                else if (_time.GetElapsedTime(reading.At) >= s_usableFor)
                {
                    var at = _time.GetTimestamp();
                    _current = reading = new Reading(_read() ?? reading.Addresses, at);
                }
            }

            return reading?.Addresses;
        }
        else if (age >= s_rereadAfter && Interlocked.CompareExchange(ref _rereading, 1, 0) == 0)
        {
            ThreadPool.UnsafeQueueUserWorkItem(static self => self.Reread(), this, preferLocal: false);
        }

        return reading.Addresses;
    }

    private void Reread()
    {
        try
        {
            // Stamped with when it began, and kept only if no check read them since: one that found this reading too
            // late to use (a slow reading, on a host of many interfaces) has a newer one already.
            var at = _time.GetTimestamp();
            FrozenSet<IPAddress>? addresses = _read();
            lock (_reading)
            {
                if (_current!.At <= at)
                {
                    _current = new Reading(addresses ?? _current.Addresses, at);
                }
            }
        }
        finally
        {
            Volatile.Write(ref _rereading, 0);
        }
    }

    private static FrozenSet<IPAddress>? ReadInterfaces()
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
