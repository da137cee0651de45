using System.Net;
using System.Net.Sockets;
using Passage.Telemetry;

namespace Passage.Relay.Destinations;

/// <summary>
/// Turns a destination host into the addresses the relay may connect to, checking every one against
/// the <see cref="AddressPolicy"/>. The relay connects to exactly the addresses returned and never
/// looks the name up again, so a DNS answer that changes between check and use (rebinding) cannot
/// slip a refused address through.
/// </summary>
/// <remarks>
/// <code>
/// host ──▶ literal? ──yes──────────────────────────────┐
///            │ no                                       ▼
///            ▼                                   check every address ──▶ Ok(addresses)
///        valid name? ──no──▶ InvalidName                │ any refused
///            │ yes                                      ▼
///            ▼                                      Prohibited(first refused, category)
///        static map? ──hit──────────────────────────────▲
///            │ miss                                     │
///            ▼                                          │
///       DNS/cache ──failed──▶ DnsError ──none──▶ NoAddresses
///            └──────────────────────────────────────────┘
/// </code>
/// With a <see cref="DnsCacheOptions"/> that is on, DNS answers are reused for a bounded time and
/// concurrent lookups of one name share one (see <see cref="DnsCache"/>); only raw answers are kept,
/// so every address handed out, kept or not, is checked against the policy then. Literals and
/// mapped names never reach DNS and are never kept.
/// Timeouts are the caller's: cancel the token. Cancellation propagates as
/// <see cref="OperationCanceledException"/>; every other expected failure is a <see cref="ResolveStatus"/>.
/// </remarks>
public sealed class DestinationResolver
{
    private readonly AddressPolicy _policy;
    private readonly Dictionary<string, IPAddress[]> _map;
    private readonly DnsCache _dns;
    // The relay's own resolver answers: it can be told a name is absolute (a final dot) and still find it in hosts(5).
    private readonly bool _ownResolver;

    /// <summary>Creates a resolver.</summary>
    /// <param name="policy">The policy every address is checked against.</param>
    /// <param name="staticMap">
    /// Names resolved without DNS (<c>--map host=address</c>); names compare ignoring case and a final dot.
    /// Mapped addresses are still checked by <paramref name="policy"/>. Copied.
    /// </param>
    /// <param name="lookup">
    /// The DNS lookup; <see langword="null"/> for the one <paramref name="dns"/> chooses. A seam for tests.
    /// It signals failure with <see cref="SocketException"/>.
    /// </param>
    /// <param name="dnsCache">
    /// How long DNS answers are reused; <see langword="null"/> for <see cref="DnsCacheOptions.Off"/>
    /// (every name looked up each time).
    /// </param>
    /// <param name="timeProvider">The clock answers age by; <see langword="null"/> for <see cref="TimeProvider.System"/>.</param>
    /// <param name="metrics">Counts where DNS answers came from; optional.</param>
    /// <param name="dns">
    /// The relay's own resolver's settings: hosts(5), then these DNS servers, answers kept within their TTLs
    /// (<see cref="StubResolver"/>). <see langword="null"/> for getaddrinfo on the process's lookup threads
    /// (<see cref="LookupThreads.Shared"/>), whose answers carry no TTL.
    /// </param>
    /// <exception cref="ArgumentException">A map key is not a valid host name, or maps to no address.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="dnsCache"/> has a negative age or no room.</exception>
    public DestinationResolver(
        AddressPolicy policy,
        IReadOnlyDictionary<string, IPAddress[]>? staticMap = null,
        Func<string, CancellationToken, Task<IPAddress[]>>? lookup = null,
        DnsCacheOptions? dnsCache = null,
        TimeProvider? timeProvider = null,
        RelayMetrics? metrics = null,
        ResolverConf? dns = null)
    {
        ArgumentNullException.ThrowIfNull(policy);
        _policy = policy;
        Func<string, CancellationToken, Task<DnsAnswer>> answer =
            lookup is not null ? DnsCache.FromAddresses(lookup)
            : dns is not null ? new StubResolver(dns, new HostsFile(HostsFile.DefaultPath), metrics).LookupAsync
            : DnsCache.FromAddresses(LookupThreads.Shared.LookupAsync);
        _dns = new DnsCache(answer, dnsCache ?? DnsCacheOptions.Off, timeProvider ?? TimeProvider.System, metrics);
        _ownResolver = lookup is null && dns is not null;
        _map = new Dictionary<string, IPAddress[]>(StringComparer.OrdinalIgnoreCase);
        foreach ((string name, IPAddress[] addresses) in staticMap ?? new Dictionary<string, IPAddress[]>())
        {
            if (HostSyntax.Parse(name, out _) != HostKind.Name)
            {
                throw new ArgumentException($"'{name}' in the static map is not a host name.", nameof(staticMap));
            }

            if (addresses is null || addresses.Length == 0 || Array.IndexOf(addresses, null) >= 0)
            {
                throw new ArgumentException($"'{name}' in the static map has no address.", nameof(staticMap));
            }

            if (!_map.TryAdd(HostSyntax.ToMapKey(name), [.. addresses]))
            {
                throw new ArgumentException($"'{name}' is in the static map twice.", nameof(staticMap));
            }
        }
    }

    /// <summary>The policy every address is checked against.</summary>
    public AddressPolicy Policy => _policy;

    /// <summary>Resolves <paramref name="host"/> and checks every address it resolves to.</summary>
    /// <param name="host">
    /// A DNS name (A-labels only), or an IPv4 or IPv6 literal in any form a resolver accepts
    /// (<c>127.1</c>, <c>0x7f000001</c>, <c>[::1]</c>, <c>fe80::1%eth0</c>); literals are never looked up.
    /// No port.
    /// </param>
    /// <param name="cancellationToken">Cancels the lookup; the caller's timeout.</param>
    /// <param name="clientNamed">
    /// The name is a client's (a CONNECT target, a ClientHello's server name), not the operator's: the relay's own
    /// resolver looks it up as written, never with this host's search domains. The allow and deny rules judged the name
    /// the client sent, and <c>vault</c> or <c>x.example.com</c> completed to <c>vault.corp.internal</c> by a search
    /// list would reach a host no rule was asked about. (The system's resolver applies its search list whatever is asked:
    /// see the README.)
    /// </param>
    /// <returns>The addresses to connect to, or why there are none.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<ResolveResult> ResolveAsync(string host, CancellationToken cancellationToken, bool clientNamed = false)
    {
        ArgumentNullException.ThrowIfNull(host);
        cancellationToken.ThrowIfCancellationRequested();

        switch (HostSyntax.Parse(host, out IPAddress? literal))
        {
            case HostKind.Address:
                return Check([literal!]);
            case HostKind.Invalid:
                return ResolveResult.InvalidName();
        }

        if (_map.TryGetValue(HostSyntax.ToMapKey(host), out IPAddress[]? mapped))
        {
            return Check(mapped);
        }

        // A final dot makes the name absolute (no search list); hosts(5) names match with or without one.
        string asked = clientNamed && _ownResolver && !host.EndsWith('.') ? host + "." : host;
        DnsAnswer answer = await _dns.LookupAsync(asked, cancellationToken).ConfigureAwait(false);
        return answer.Error is { } error ? ResolveResult.DnsError(error)
            : answer.Addresses.Length == 0 ? ResolveResult.NoAddresses()
            : Check(answer.Addresses);
    }

    /// <summary>The DNS cache in front of the lookup, for tests.</summary>
    internal DnsCache Cache => _dns;

    private ResolveResult Check(IPAddress[] addresses)
    {
        if (addresses is [{ } only])
        {
            // The common case (a literal, a name with one address): the array itself, read only from here on.
            AddressVerdict onlyVerdict = _policy.Check(only);
            return onlyVerdict.IsAllowed ? ResolveResult.Ok(addresses) : ResolveResult.Prohibited(only, onlyVerdict.Category);
        }

        var distinct = new List<IPAddress>(addresses.Length);
        foreach (IPAddress address in addresses)
        {
            if (address is null || distinct.Contains(address))
            {
                continue;
            }

            AddressVerdict verdict = _policy.Check(address);
            if (!verdict.IsAllowed)
            {
                return ResolveResult.Prohibited(address, verdict.Category);
            }

            distinct.Add(address);
        }

        return distinct.Count == 0 ? ResolveResult.NoAddresses() : ResolveResult.Ok(distinct);
    }
}
