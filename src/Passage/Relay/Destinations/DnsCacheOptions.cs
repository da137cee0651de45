namespace Passage.Relay.Destinations;

/// <summary>
/// How long the relay reuses DNS answers for destination names at most, counted from when an answer arrived.
/// Answers of the relay's own resolver carry their records' TTLs and are kept no longer than those; the
/// system resolver (getaddrinfo) reports no TTLs, so its answers (and names from /etc/hosts) are kept this long.
/// </summary>
public sealed record DnsCacheOptions
{
    /// <summary>Default for <see cref="MaxEntries"/>: 4096.</summary>
    public const int DefaultMaxEntries = 4096;

    /// <summary>
    /// How long a name's addresses are reused. Zero turns the cache off: every connection looks its
    /// name up itself, and concurrent lookups of one name are not combined. Default 30 s.
    /// </summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The shortest <see cref="NegativeMaxAge"/> the configuration takes (<c>relay.dnsNegativeTtl</c>): RFC 9520 has
    /// resolvers keep a failed lookup 1 s at least, so a name whose servers fail is not asked again on every connection.
    /// </summary>
    public static readonly TimeSpan MinNegativeMaxAge = TimeSpan.FromSeconds(1);

    /// <summary>
    /// How long a failed lookup (a DNS error, or a name without addresses) is reused; zero keeps no
    /// failure (concurrent lookups are still combined), which the configuration does not offer: it takes
    /// <see cref="MinNegativeMaxAge"/> or more. Unused when <see cref="MaxAge"/> is zero. Default 5 s.
    /// The relay's own resolver keeps a name without addresses no longer than its SOA allows, and not at all
    /// when the answer came without one (RFC 2308 §5).
    /// </summary>
    public TimeSpan NegativeMaxAge { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Names kept at most, lookups under way included; a new name beyond that pushes out the one
    /// added longest ago. Default 4096.
    /// </summary>
    public int MaxEntries { get; init; } = DefaultMaxEntries;

    /// <summary>No cache: every name is looked up each time, as it comes.</summary>
    public static DnsCacheOptions Off { get; } = new() { MaxAge = TimeSpan.Zero, NegativeMaxAge = TimeSpan.Zero };

    /// <summary>Whether answers are kept at all.</summary>
    internal bool Enabled => MaxAge > TimeSpan.Zero;
}
