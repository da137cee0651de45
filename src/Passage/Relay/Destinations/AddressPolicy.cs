using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// Which destination addresses the relay may connect to. Immutable and safe to share between
/// connections.
/// </summary>
/// <remarks>
/// The rules, in order:
/// <list type="number">
/// <item>A <see cref="AddressCategory.Public"/> address is allowed.</item>
/// <item>An address inside one of <see cref="AllowedNetworks"/> (<c>--allow-network</c>) is allowed,
/// whatever its category, but a <see cref="AddressCategory.Metadata"/> address only by a network of that one
/// address (<c>169.254.169.254/32</c>): one written for a private or link-local range (<c>fd00::/8</c> holds
/// <c>fd00:ec2::254</c>, <c>169.254.0.0/16</c> holds <c>169.254.169.254</c>) must not hand out the host's cloud
/// credentials by the way. So with this host's own addresses (<see cref="HostAddresses"/>), which count as
/// <see cref="AddressCategory.Loopback"/>: a network of the relay's LAN must not open the services of the relay's
/// host. An IPv4 network also covers the IPv4-mapped IPv6 form of its addresses, and an IPv6 network covers none of them
/// (<c>::/0</c> holds <c>::ffff:127.0.0.1</c> in its bits, but that is IPv4's loopback).</item>
/// <item>With <see cref="AllowPrivate"/> (<c>--allow-private</c>), <see cref="AddressCategory.Loopback"/>,
/// <see cref="AddressCategory.Private"/>, <see cref="AddressCategory.LinkLocal"/> and
/// <see cref="AddressCategory.SharedCgnat"/> are allowed.</item>
/// <item>Everything else is refused. <see cref="AddressCategory.Metadata"/>,
/// <see cref="AddressCategory.Multicast"/>, <see cref="AddressCategory.Unspecified"/> and
/// <see cref="AddressCategory.Reserved"/> are never opened by <c>--allow-private</c>: a metadata
/// endpoint hands out the host's cloud credentials, and the others are not unicast destinations.
/// Each needs its network named with <c>--allow-network</c> (a metadata address, itself: <c>169.254.169.254/32</c>).</item>
/// </list>
/// </remarks>
public sealed class AddressPolicy
{
    /// <summary>The default policy: public addresses only.</summary>
    public static AddressPolicy PublicOnly { get; } = new(allowPrivate: false, allowedNetworks: []);

    private readonly IPNetwork[] _allowedNetworks;

    /// <summary>Creates a policy.</summary>
    /// <param name="allowPrivate">Allow loopback, private, link-local and CGNAT addresses.</param>
    /// <param name="allowedNetworks">Networks allowed whatever their category (a metadata address, or one of this host's, only by a network of it alone); copied.</param>
    public AddressPolicy(bool allowPrivate, IEnumerable<IPNetwork> allowedNetworks)
    {
        ArgumentNullException.ThrowIfNull(allowedNetworks);
        AllowPrivate = allowPrivate;
        _allowedNetworks = [.. allowedNetworks];
    }

    /// <summary>Whether loopback, private, link-local and CGNAT addresses are allowed.</summary>
    public bool AllowPrivate { get; }

    /// <summary>Networks allowed whatever the category of their addresses (a metadata address, or one of this host's, only by a network of it alone).</summary>
    public IReadOnlyList<IPNetwork> AllowedNetworks => _allowedNetworks;

    /// <summary>Decides whether the relay may connect to <paramref name="address"/>.</summary>
    /// <param name="address">A resolved destination address; its scope ID is ignored.</param>
    /// <returns>Allowed or refused, with the address's category.</returns>
    public AddressVerdict Check(IPAddress address)
    {
        ArgumentNullException.ThrowIfNull(address);
        AddressCategory category = AddressClassifier.Classify(address);
        bool own = category is not (AddressCategory.Loopback or AddressCategory.Metadata or AddressCategory.Multicast
            or AddressCategory.Unspecified) && HostAddresses.Contains(address);
        category = own ? AddressCategory.Loopback : category;
        bool allowed = category == AddressCategory.Public
            || IsInAllowedNetwork(address, alone: own || category == AddressCategory.Metadata)
            || (AllowPrivate && category is AddressCategory.Loopback or AddressCategory.Private
                or AddressCategory.LinkLocal or AddressCategory.SharedCgnat);
        return new AddressVerdict(allowed, category);
    }

    /// <summary>
    /// Parses a configured list of networks in CIDR form (<c>10.0.0.0/8</c>, <c>fd00::/8</c>), adding one
    /// message per bad entry to <paramref name="errors"/> so that a validator can report every error at once.
    /// </summary>
    /// <param name="entries">The configured strings.</param>
    /// <param name="key">The configuration key named in messages, e.g. <c>relay.allowNetworks</c>.</param>
    /// <param name="errors">Receives messages such as
    /// <c>relay.allowNetworks[1]: '10.0.0.0/33' is not a network in CIDR form</c>.</param>
    /// <returns>The networks that parsed; complete only when no error was added.</returns>
    /// <remarks>
    /// Nothing is coerced: surrounding spaces, a missing prefix length, abbreviated IPv4 forms such as
    /// <c>10.1/16</c>, address bits set beyond the prefix (<c>10.0.0.1/8</c>), a zone (<c>fe80::%eth0/64</c>:
    /// addresses are matched without theirs) and an IPv4-mapped network (<c>::ffff:10.0.0.0/104</c>: an A record's
    /// address is not matched against it) are errors.
    /// </remarks>
    public static IReadOnlyList<IPNetwork> ParseNetworks(
        IReadOnlyList<string?> entries, string key, ICollection<string> errors)
    {
        ArgumentNullException.ThrowIfNull(entries);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(errors);

        var networks = new List<IPNetwork>(entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            string? entry = entries[i];
            string where = string.Create(CultureInfo.InvariantCulture, $"{key}[{i}]");
            if (string.IsNullOrEmpty(entry))
            {
                errors.Add($"{where}: an empty entry is not a network in CIDR form");
                continue;
            }

            int slash = entry.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0
                || !IPNetwork.TryParse(entry, out IPNetwork network)
                || !IPAddress.TryParse(entry.AsSpan(0, slash), out IPAddress? written)
                || (written.AddressFamily == AddressFamily.InterNetwork && !IsDottedQuad(entry.AsSpan(0, slash))))
            {
                errors.Add($"{where}: '{entry}' is not a network in CIDR form");
                continue;
            }

            if (entry.AsSpan(0, slash).Contains('%'))
            {
                // Addresses are matched without their zone (see Check), so a network on one interface would be
                // every interface's: refused rather than silently wider than written.
                errors.Add($"{where}: '{entry}' names a zone, but networks are matched on every interface; write '{WithoutZone(network)}'");
                continue;
            }

            if (written.IsIPv4MappedToIPv6 && network.PrefixLength >= 96)
            {
                // An IPv4 address (an A record) is not matched against an IPv6 network, so this would allow the mapped
                // form of its addresses only; the IPv4 network allows both.
                errors.Add($"{where}: '{entry}' is an IPv4-mapped network, which IPv4 addresses are not matched against; write '{new IPNetwork(network.BaseAddress.MapToIPv4(), network.PrefixLength - 96)}' (it covers the mapped form too)");
                continue;
            }

            if (!written.Equals(network.BaseAddress))
            {
                errors.Add($"{where}: '{entry}' has address bits set beyond its prefix length; did you mean '{network}'?");
                continue;
            }

            networks.Add(network);
        }

        return networks;
    }

    private static IPNetwork WithoutZone(IPNetwork network) =>
        new(new IPAddress(network.BaseAddress.GetAddressBytes()), network.PrefixLength);

    /// <summary>Whether an allowed network holds <paramref name="address"/>; with <paramref name="alone"/>, one that holds nothing else.</summary>
    private bool IsInAllowedNetwork(IPAddress address, bool alone)
    {
        // A mapped address is its IPv4 address, where a dual-stack socket connects: matched against IPv4 networks only,
        // never against an IPv6 network that holds ::ffff:0:0/96 in its bits (::/0), which opens no IPv4 address.
        IPAddress matched = address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
        foreach (IPNetwork network in _allowedNetworks)
        {
            if (alone && network.PrefixLength != (network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? 32 : 128))
            {
                continue;
            }

            if (network.Contains(matched))
            {
                return true;
            }
        }

        return false;
    }

    // Four decimal parts of one to three digits without leading zeros: the only IPv4 form a
    // configuration should contain (inet_aton's short, octal and hex forms are easy to misread).
    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        int parts = 0;
        foreach (Range range in text.Split('.'))
        {
            ReadOnlySpan<char> part = text[range];
            if (++parts > 4 || part.IsEmpty || part.Length > 3 || (part.Length > 1 && part[0] == '0')
                || part.ContainsAnyExceptInRange('0', '9'))
            {
                return false;
            }
        }

        return parts == 4;
    }
}
