using System.Net;

namespace Passage.Relay.Destinations;

/// <summary>Which destination addresses a relay may reach, names pinned to addresses, and how long DNS answers are reused.</summary>
public sealed record DestinationOptions
{
    /// <summary>
    /// Allow loopback, private (RFC 1918, ULA), link-local and CGNAT addresses. Metadata, multicast,
    /// unspecified and reserved addresses still need <see cref="AllowNetworks"/>. Default false.
    /// </summary>
    public bool AllowPrivate { get; init; }

    /// <summary>Networks allowed whatever their kind. Default none.</summary>
    public IReadOnlyList<IPNetwork> AllowNetworks { get; init; } = Array.Empty<IPNetwork>();

    /// <summary>
    /// Names resolved without DNS (<c>--map host=address</c>); keys lower-case without a trailing dot.
    /// The addresses are still checked against the policy. Default none.
    /// </summary>
    public IReadOnlyDictionary<string, IPAddress[]> Map { get; init; } = new Dictionary<string, IPAddress[]>();

    /// <summary>
    /// The relay's own resolver (hosts(5), then these DNS servers; answers kept within their TTLs), or
    /// <see langword="null"/> for the system's (getaddrinfo on a few threads of its own; no TTLs). Default null;
    /// <c>passage relay</c> chooses the relay's own where the system's would answer the same (see <see cref="RelaySettings"/>).
    /// </summary>
    public ResolverConf? Dns { get; init; }

    /// <summary>
    /// Whether <see cref="Dns"/> was chosen by <c>relay.dnsResolver: auto</c> (by nsswitch.conf as the relay started),
    /// so that the settings printed say auto, as configured, rather than the choice made. Default false.
    /// </summary>
    public bool DnsResolverAuto { get; init; }

    /// <summary>How long DNS answers for destination names are reused at most. Default 30 s, failures 5 s, 4096 names.</summary>
    public DnsCacheOptions DnsCache { get; init; } = new();
}
