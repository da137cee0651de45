using System.Net;
using System.Net.Sockets;
using Passage.Telemetry;

namespace Passage.Relay.Destinations;

/// <summary>
/// A DNS answer as the resolver uses it: the addresses (perhaps none), or the lookup's error; and how long it
/// may be kept by the TTLs of its records, when the lookup knows them (null: only the cache's maximum ages bound it).
/// </summary>
internal readonly record struct DnsAnswer(IPAddress[] Addresses, SocketError? Error, TimeSpan? Ttl = null)
{
    /// <summary>
    /// Addresses of one family an answer keeps at most: the first ones, in its order. About as many A records as an
    /// answer over UDP holds (512 bytes), and with both families more than the dialer reaches in the default connect
    /// timeout (it starts one every 250 ms). The DNS server of a name is the name owner's: over TCP it can send
    /// thousands, and each would be checked on every connection to the name and kept in the cache.
    /// </summary>
    public const int MaxAddressesPerFamily = 32;

    /// <summary>At most <see cref="MaxAddressesPerFamily"/> of each family of <paramref name="addresses"/>, in their order.</summary>
    public static IPAddress[] Bounded(IPAddress[] addresses)
    {
        if (addresses.Length <= MaxAddressesPerFamily)
        {
            return addresses;
        }

        var kept = new List<IPAddress>(2 * MaxAddressesPerFamily);
        int v4 = 0;
        int v6 = 0;
        foreach (IPAddress address in addresses)
        {
            ref int count = ref address.AddressFamily == AddressFamily.InterNetworkV6 ? ref v6 : ref v4;
            if (count++ < MaxAddressesPerFamily)
            {
                kept.Add(address);
            }
        }

        return kept.Count == addresses.Length ? addresses : [.. kept];
    }

    /// <summary>An answer with at least one address; anything else is a negative answer.</summary>
    public bool HasAddresses => Error is null && Addresses.Length > 0;
}

/// <summary>Where a name's DNS answer came from, as counted by <see cref="RelayMetrics"/>.</summary>
internal enum DnsCacheResult
{
    /// <summary>A kept answer, younger than its maximum age.</summary>
    Hit,

    /// <summary>A lookup of the same name already under way.</summary>
    Coalesced,

    /// <summary>A new lookup.</summary>
    Miss,

    /// <summary>A lookup of a kept name near the end of its lifetime, made while its answer still served (not an answer to a connection).</summary>
    Refreshed,
}

/// <summary>
/// Keeps raw DNS answers for destination names for a bounded time and folds concurrent lookups of
/// one name into one. It never judges an address: the resolver checks every address it hands out
/// against the policy, kept or not, so a policy change applies to the next connection.
/// </summary>
/// <remarks>
/// <code>
/// name ──▶ kept and younger than its max age? ──yes──▶ the kept answer (hit); in its last tenth, look it up again meanwhile
///            │ no
///            ▼
///        lookup under way? ──yes──▶ wait for it (coalesced)
///            │ no
///            ▼
///        start one, keep it (pushing out the oldest name when full) and wait for it (miss)
/// </code>
/// An answer's age counts from when it arrived, on the <see cref="TimeProvider"/>. It is kept for its TTL
/// (<see cref="DnsAnswer.Ttl"/>, from the relay's own resolver) but never longer than the maximum age;
/// getaddrinfo reports no TTL, so there the maximum age stands in for it. Names compare ignoring case; a final dot makes another
/// name (it skips the resolver's search domains), so each is looked up as written. A caller that gives up gets <see cref="OperationCanceledException"/> at
/// once and leaves the lookup running for the others; the lookup is cancelled only when every caller
/// waiting for it has given up. A lookup that throws (the system resolver's <see cref="SocketException"/> is
/// turned into an answer by <see cref="FromAddresses"/> before it gets here) is passed to its callers and not kept.
/// </remarks>
internal sealed class DnsCache
{
    private readonly Func<string, CancellationToken, Task<DnsAnswer>> _lookup;
    private readonly DnsCacheOptions _options;
    private readonly TimeProvider _time;
    private readonly RelayMetrics? _metrics;
    private readonly object _gate = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.OrdinalIgnoreCase);
    private readonly LinkedList<Entry> _age = new();

    /// <summary>Creates a cache in front of <paramref name="lookup"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A maximum age is negative, or no entry is allowed.</exception>
    public DnsCache(
        Func<string, CancellationToken, Task<DnsAnswer>> lookup, DnsCacheOptions options, TimeProvider time, RelayMetrics? metrics)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxAge, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.NegativeMaxAge, TimeSpan.Zero, nameof(options));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxEntries, 1, nameof(options));
        _lookup = lookup;
        _options = options;
        _time = time;
        _metrics = metrics;
    }

    /// <summary>Names kept now, lookups under way included; never more than <see cref="DnsCacheOptions.MaxEntries"/>.</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _entries.Count;
            }
        }
    }

    /// <summary>The answer for <paramref name="name"/> (a valid DNS name, not a literal).</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public async ValueTask<DnsAnswer> LookupAsync(string name, CancellationToken cancellationToken)
    {
        if (!_options.Enabled)
        {
            _metrics?.DnsAnswered(DnsCacheResult.Miss);
            return await _lookup(name, cancellationToken).ConfigureAwait(false);
        }

        // Case does not matter to DNS; a final dot does (it skips the resolver's search domains), so it stays.
        string key = name.ToLowerInvariant();
        Entry entry;
        DnsCacheResult result;
        bool refresh = false;
        DnsAnswer hit = default;
        lock (_gate)
        {
            if (_entries.TryGetValue(key, out Entry? kept) && kept.Answer is { } answer && IsFresh(kept, answer))
            {
                entry = kept;
                result = DnsCacheResult.Hit;
                hit = answer;
                refresh = !entry.Refreshing && answer.HasAddresses && IsNearItsEnd(entry, answer);
                entry.Refreshing |= refresh;
            }
            else if (kept is not null && kept.Answer is null)
            {
                entry = kept;
                entry.Waiting++;
                result = DnsCacheResult.Coalesced;
            }
            else
            {
                if (kept is not null)
                {
                    Remove(kept);
                }

                entry = Add(key);
                result = DnsCacheResult.Miss;
            }
        }

        _metrics?.DnsAnswered(result);
        switch (result)
        {
            case DnsCacheResult.Hit:
                if (refresh)
                {
                    _ = RefreshAsync(entry);
                }

                return hit;
            case DnsCacheResult.Miss:
                _ = RunAsync(entry);
                break;
        }

        try
        {
            return await entry.Completion.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            Leave(entry);
            throw;
        }
    }

    /// <summary>
    /// A lookup that gives addresses (getaddrinfo's), its <see cref="SocketException"/> turned into an answer that keeps
    /// <see cref="DnsAnswer.MaxAddressesPerFamily"/> of each family at most.
    /// </summary>
    public static Func<string, CancellationToken, Task<DnsAnswer>> FromAddresses(Func<string, CancellationToken, Task<IPAddress[]>> lookup) =>
        (name, cancellationToken) => LookupOnceAsync(lookup, name, cancellationToken);

    /// <summary>One lookup, its <see cref="SocketException"/> turned into an answer.</summary>
    /// <exception cref="OperationCanceledException">
    /// <paramref name="cancellationToken"/> was cancelled, even if the lookup reported that as a failure.
    /// </exception>
    private static async Task<DnsAnswer> LookupOnceAsync(
        Func<string, CancellationToken, Task<IPAddress[]>> lookup, string name, CancellationToken cancellationToken)
    {
        try
        {
            IPAddress[]? addresses = await lookup(name, cancellationToken).ConfigureAwait(false);
            return new DnsAnswer(DnsAnswer.Bounded(addresses ?? []), null);
        }
        catch (SocketException exception)
        {
            // A lookup that fails because its caller gave up is that caller's cancellation, not a DNS error.
            cancellationToken.ThrowIfCancellationRequested();
            return new DnsAnswer([], exception.SocketErrorCode);
        }
    }

    private bool IsFresh(Entry entry, DnsAnswer answer) => _time.GetElapsedTime(entry.ArrivedAt) < Lifetime(answer);

    /// <summary>In the last tenth of its lifetime: a name still in use is looked up again before it runs out.</summary>
    private bool IsNearItsEnd(Entry entry, DnsAnswer answer) => _time.GetElapsedTime(entry.ArrivedAt) >= Lifetime(answer) * 0.9;

    private TimeSpan Lifetime(DnsAnswer answer)
    {
        if (answer.Error == SocketError.TooManyOpenSockets)
        {
            // No descriptor to ask with: the relay's state at that moment, nothing about the name. Not kept.
            return TimeSpan.Zero;
        }

        TimeSpan maxAge = answer.HasAddresses ? _options.MaxAge : _options.NegativeMaxAge;
        return answer.Ttl is { } ttl && ttl < maxAge ? ttl : maxAge;
    }

    /// <summary>
    /// Looks a kept name up again while its answer still serves (prefetch, as caching resolvers do), so a name in
    /// steady use never makes a connection wait for DNS. A new answer with addresses replaces the kept one; after
    /// a failure, the kept one runs out as it would have, with no second refresh.
    /// </summary>
    private async Task RefreshAsync(Entry entry)
    {
        DnsAnswer answer = default;
        try
        {
            // Nobody waits for it: bounded by the resolver's own timeouts.
            answer = await _lookup(entry.Name, CancellationToken.None).ConfigureAwait(false);
        }
        catch (Exception exception) when (exception is not OutOfMemoryException)
        {
            // As a failed refresh: the kept answer stands until it runs out.
        }

        lock (_gate)
        {
            // A failed refresh is not tried again: the kept answer runs out and the next connection looks it up.
            if (answer.HasAddresses && entry.Node is not null)
            {
                entry.Refreshing = false;
                entry.Answer = answer;
                entry.ArrivedAt = _time.GetTimestamp();
                if (!IsFresh(entry, answer))
                {
                    Remove(entry);
                }
            }
        }

        _metrics?.DnsAnswered(DnsCacheResult.Refreshed);
    }

    /// <summary>The shared lookup: nobody's cancellation but the abandonment of all its callers stops it.</summary>
    private async Task RunAsync(Entry entry)
    {
        DnsAnswer answer;
        try
        {
            answer = await _lookup(entry.Name, entry.Abandon.Token).ConfigureAwait(false);
        }
        catch (Exception exception)
        {
            lock (_gate)
            {
                Remove(entry);
            }

            if (exception is OperationCanceledException canceled)
            {
                entry.Completion.TrySetCanceled(canceled.CancellationToken);
            }
            else
            {
                entry.Completion.TrySetException(exception);
            }

            return;
        }

        lock (_gate)
        {
            entry.Answer = answer;
            entry.ArrivedAt = _time.GetTimestamp();
            if (!IsFresh(entry, answer))
            {
                // A maximum age or TTL of zero: the callers waiting get the answer, nobody after them.
                Remove(entry);
            }
        }

        entry.Completion.TrySetResult(answer);
    }

    /// <summary>A caller gave up; when it was the last one waiting, the lookup is dropped and cancelled.</summary>
    private void Leave(Entry entry)
    {
        bool abandon;
        lock (_gate)
        {
            abandon = --entry.Waiting == 0 && entry.Answer is null;
            if (abandon)
            {
                Remove(entry);
            }
        }

        if (abandon)
        {
            // Outside the lock: cancelling may run the lookup's own continuations here.
            entry.Abandon.Cancel();
        }
    }

    private Entry Add(string key)
    {
        while (_entries.Count >= _options.MaxEntries && _age.First is { } oldest)
        {
            // A lookup pushed out while under way still answers the callers waiting for it.
            Remove(oldest.Value);
        }

        var entry = new Entry(key);
        entry.Node = _age.AddLast(entry);
        _entries.Add(key, entry);
        return entry;
    }

    /// <summary>Forgets <paramref name="entry"/> if it is still kept; under the lock.</summary>
    private void Remove(Entry entry)
    {
        if (entry.Node is { } node)
        {
            _age.Remove(node);
            entry.Node = null;
            _entries.Remove(entry.Name);
        }
    }

    private sealed class Entry(string name)
    {
        /// <summary>The name as looked up (lower case; a final dot kept).</summary>
        public string Name { get; } = name;

        /// <summary>Completes with the answer, for the callers waiting.</summary>
        public TaskCompletionSource<DnsAnswer> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Cancels the lookup once nobody waits for it. Never disposed: it has no timer and may be cancelled late.</summary>
        public CancellationTokenSource Abandon { get; } = new();

        /// <summary>Callers waiting for the lookup, the one that started it included; under the lock.</summary>
        public int Waiting { get; set; } = 1;

        /// <summary>The answer once it arrived; null while the lookup is under way. Under the lock.</summary>
        public DnsAnswer? Answer { get; set; }

        /// <summary>When <see cref="Answer"/> arrived (a <see cref="TimeProvider"/> timestamp).</summary>
        public long ArrivedAt { get; set; }

        /// <summary>A refresh of the kept answer is under way, or failed; under the lock.</summary>
        public bool Refreshing { get; set; }

        /// <summary>Its place in the age order while kept; null once forgotten.</summary>
        public LinkedListNode<Entry>? Node { get; set; }
    }
}
