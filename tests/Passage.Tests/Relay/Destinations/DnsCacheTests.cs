using System.Net;
using System.Net.Sockets;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

/// <summary>
/// The resolver's DNS cache, through <see cref="DestinationResolver"/>: a counting fake stands in for
/// the system resolver and a manual clock for time, so nothing here sleeps or measures time.
/// </summary>
public sealed class DnsCacheTests
{
    private static readonly TimeSpan s_tick = TimeSpan.FromTicks(1);

    private static readonly DnsCacheOptions s_defaults = new();

    /// <summary>When a kept answer enters the last tenth of its lifetime at the default maximum age, and a use looks it up again ahead.</summary>
    private static readonly TimeSpan s_prefetchAt = s_defaults.MaxAge * 0.9;

    private readonly ManualTimeProvider _time = new();

    private DestinationResolver Resolver(
        CountingDns dns, DnsCacheOptions? options = null, AddressPolicy? policy = null,
        IReadOnlyDictionary<string, IPAddress[]>? map = null, RelayMetrics? metrics = null) =>
        new(policy ?? AddressPolicy.PublicOnly, map, dns.LookupAsync, options ?? s_defaults, _time, metrics);

    private static async Task<ResolveResult> Resolve(DestinationResolver resolver, string host) =>
        await resolver.ResolveAsync(host, CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);

    [Fact]
    public void The_defaults_are_30_seconds_5_seconds_and_4096_names()
    {
        Assert.Equal(TimeSpan.FromSeconds(30), s_defaults.MaxAge);
        Assert.Equal(TimeSpan.FromSeconds(5), s_defaults.NegativeMaxAge);
        Assert.Equal(4096, s_defaults.MaxEntries);
    }

    [Fact]
    public async Task An_answer_is_reused_until_its_maximum_age_then_looked_up_again()
    {
        var dns = new CountingDns("8.8.8.8");
        var resolver = Resolver(dns);

        Assert.Equal([IPAddress.Parse("8.8.8.8")], (await Resolve(resolver, "example.com")).Addresses);
        dns.Answer = ["1.1.1.1"];
        _time.Advance(s_prefetchAt - s_tick);
        Assert.Equal([IPAddress.Parse("8.8.8.8")], (await Resolve(resolver, "example.com")).Addresses);
        Assert.Equal(1, dns.Count);

        // Not used in its last tenth (which would look it up again ahead), it runs out.
        _time.Advance(s_defaults.MaxAge - s_prefetchAt + s_tick);
        Assert.Equal([IPAddress.Parse("1.1.1.1")], (await Resolve(resolver, "example.com")).Addresses);
        Assert.Equal(2, dns.Count);

        // The new answer is kept in turn, its age counted from when it arrived.
        _time.Advance(s_prefetchAt - s_tick);
        await Resolve(resolver, "example.com");
        Assert.Equal(2, dns.Count);
    }

    [Theory]
    [InlineData(SocketError.HostNotFound, ResolveStatus.DnsError)]
    [InlineData(SocketError.TryAgain, ResolveStatus.DnsError)]
    [InlineData(null, ResolveStatus.NoAddresses)]
    public async Task A_failure_is_reused_for_the_shorter_negative_age(SocketError? error, ResolveStatus status)
    {
        var dns = new CountingDns { Error = error };
        var resolver = Resolver(dns);

        ResolveResult first = await Resolve(resolver, "missing.example");
        Assert.Equal(status, first.Status);
        Assert.Equal(error, first.DnsErrorCode);

        dns.Error = null;
        dns.Answer = ["8.8.8.8"];
        _time.Advance(s_defaults.NegativeMaxAge - s_tick);
        ResolveResult again = await Resolve(resolver, "missing.example");
        Assert.Equal(status, again.Status);
        Assert.Equal(error, again.DnsErrorCode);
        Assert.Equal(1, dns.Count);

        _time.Advance(s_tick);
        Assert.Equal(ResolveStatus.Ok, (await Resolve(resolver, "missing.example")).Status);
        Assert.Equal(2, dns.Count);
    }

    [Fact]
    public async Task A_negative_age_of_zero_keeps_no_failure_but_still_keeps_answers()
    {
        var dns = new CountingDns("8.8.8.8") { Error = SocketError.HostNotFound };
        var resolver = Resolver(dns, s_defaults with { NegativeMaxAge = TimeSpan.Zero });

        Assert.Equal(ResolveStatus.DnsError, (await Resolve(resolver, "a.example")).Status);
        Assert.Equal(ResolveStatus.DnsError, (await Resolve(resolver, "a.example")).Status);
        Assert.Equal(2, dns.Count);

        dns.Error = null;
        await Resolve(resolver, "a.example");
        await Resolve(resolver, "a.example");
        Assert.Equal(3, dns.Count);
    }

    [Fact]
    public async Task Concurrent_callers_for_one_name_share_one_lookup()
    {
        var hold = Held();
        var dns = new CountingDns("8.8.8.8") { Hold = hold };
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var resolver = Resolver(dns, metrics: metrics);

        Task<ResolveResult>[] callers = [.. Enumerable.Range(0, 20).Select(_ => resolver.ResolveAsync("example.com", CancellationToken.None).AsTask())];
        Assert.Equal(1, dns.Count);
        Assert.DoesNotContain(callers, caller => caller.IsCompleted);

        hold.SetResult([IPAddress.Parse("8.8.8.8")]);
        ResolveResult[] results = await Task.WhenAll(callers).WaitAsync(Timeouts.Default);

        Assert.All(results, result => Assert.Equal([IPAddress.Parse("8.8.8.8")], result.Addresses));
        Assert.Equal(1, dns.Count);
        await Resolve(resolver, "example.com");
        Assert.Equal(1, dns.Count);
        Assert.Equal(1, recorder["passage.relay.dns.answers/miss"]);
        Assert.Equal(19, recorder["passage.relay.dns.answers/coalesced"]);
        Assert.Equal(1, recorder["passage.relay.dns.answers/hit"]);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task A_caller_that_gives_up_gets_cancellation_at_once_and_the_others_still_get_the_answer(int giver)
    {
        var hold = Held();
        var dns = new CountingDns { Hold = hold };
        var resolver = Resolver(dns);
        using var cancellation = new CancellationTokenSource();

        Task<ResolveResult>[] callers =
        [.. Enumerable.Range(0, 3).Select(i => resolver.ResolveAsync("example.com", i == giver ? cancellation.Token : CancellationToken.None).AsTask())];
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => callers[giver].WaitAsync(Timeouts.Default));
        Assert.False(dns.Token(0).IsCancellationRequested);
        Assert.DoesNotContain(callers.Where((_, i) => i != giver), caller => caller.IsCompleted);

        hold.SetResult([IPAddress.Parse("8.8.8.8")]);
        foreach (Task<ResolveResult> caller in callers.Where((_, i) => i != giver))
        {
            Assert.Equal([IPAddress.Parse("8.8.8.8")], (await caller.WaitAsync(Timeouts.Default)).Addresses);
        }

        await Resolve(resolver, "example.com");
        Assert.Equal(1, dns.Count);
    }

    [Fact]
    public async Task When_every_caller_gives_up_the_lookup_is_cancelled_and_the_next_caller_starts_anew()
    {
        var dns = new CountingDns("8.8.8.8") { Hold = Held() };
        var resolver = Resolver(dns);
        using var first = new CancellationTokenSource();
        using var second = new CancellationTokenSource();

        Task<ResolveResult> a = resolver.ResolveAsync("example.com", first.Token).AsTask();
        Task<ResolveResult> b = resolver.ResolveAsync("example.com", second.Token).AsTask();
        await first.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a.WaitAsync(Timeouts.Default));
        Assert.False(dns.Token(0).IsCancellationRequested);

        await second.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => b.WaitAsync(Timeouts.Default));
        Assert.True(dns.Token(0).IsCancellationRequested);
        Assert.Equal(0, resolver.Cache.Count);

        dns.Hold = null;
        Assert.Equal(ResolveStatus.Ok, (await Resolve(resolver, "example.com")).Status);
        Assert.Equal(2, dns.Count);
    }

    [Fact]
    public async Task A_lookup_that_throws_something_else_fails_its_callers_and_is_not_kept()
    {
        var dns = new CountingDns("8.8.8.8") { Failure = new InvalidOperationException("resolver broke") };
        var resolver = Resolver(dns);

        await Assert.ThrowsAsync<InvalidOperationException>(() => Resolve(resolver, "example.com"));
        dns.Failure = null;
        Assert.Equal(ResolveStatus.Ok, (await Resolve(resolver, "example.com")).Status);
        Assert.Equal(2, dns.Count);
    }

    [Fact]
    public async Task The_policy_checks_every_address_handed_out_from_the_cache()
    {
        var dns = new CountingDns("8.8.8.8", "10.0.0.1");
        var resolver = Resolver(dns);

        for (var i = 0; i < 3; i++)
        {
            ResolveResult result = await Resolve(resolver, "rebind.example");
            Assert.Equal(ResolveStatus.Prohibited, result.Status);
            Assert.Equal(IPAddress.Parse("10.0.0.1"), result.RefusedAddress);
            Assert.Empty(result.Addresses);
        }

        Assert.Equal(1, dns.Count);
    }

    [Theory]
    [InlineData(10, 30, 10)]
    [InlineData(0, 30, 0)]
    [InlineData(3600, 30, 30)]
    public async Task An_answer_with_a_ttl_is_kept_for_the_smaller_of_its_ttl_and_the_maximum_age(int ttlSeconds, int maxAgeSeconds, int keptSeconds)
    {
        var lookups = 0;
        var options = s_defaults with { MaxAge = TimeSpan.FromSeconds(maxAgeSeconds) };
        var cache = new DnsCache(
            (_, _) => { lookups++; return Task.FromResult(new DnsAnswer([IPAddress.Parse("8.8.8.8")], null, TimeSpan.FromSeconds(ttlSeconds))); },
            options, _time, metrics: null);

        await cache.LookupAsync("ttl.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        if (keptSeconds > 0)
        {
            // Short of its last tenth, where a use would look it up again ahead.
            _time.Advance(TimeSpan.FromSeconds(keptSeconds * 0.9) - s_tick);
            await cache.LookupAsync("ttl.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal(1, lookups);
            _time.Advance(TimeSpan.FromSeconds(keptSeconds * 0.1) + s_tick);
        }

        await cache.LookupAsync("ttl.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(2, lookups);
    }

    [Fact]
    public async Task A_name_used_in_the_last_tenth_of_its_life_is_looked_up_again_while_its_answer_still_serves()
    {
        var dns = new CountingDns("8.8.8.8");
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var resolver = Resolver(dns, metrics: metrics);
        await Resolve(resolver, "example.com");

        dns.Answer = ["1.1.1.1"];
        _time.Advance(s_prefetchAt);
        Assert.Equal([IPAddress.Parse("8.8.8.8")], (await Resolve(resolver, "example.com")).Addresses);
        await Timeouts.WaitUntilAsync(() => recorder["passage.relay.dns.answers/refreshed"] == 1);
        Assert.Equal(2, dns.Count);

        // The refreshed answer serves from then on, its age counted from the refresh: past the first answer's end.
        _time.Advance(s_defaults.MaxAge - s_prefetchAt + TimeSpan.FromSeconds(1));
        Assert.Equal([IPAddress.Parse("1.1.1.1")], (await Resolve(resolver, "example.com")).Addresses);
        Assert.Equal(2, dns.Count);
        Assert.Equal(2, recorder["passage.relay.dns.answers/hit"]);
    }

    [Fact]
    public async Task One_refresh_at_a_time_and_none_again_after_one_failed()
    {
        var dns = new CountingDns("8.8.8.8");
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var resolver = Resolver(dns, metrics: metrics);
        await Resolve(resolver, "example.com");
        var hold = Held();
        dns.Hold = hold;
        _time.Advance(s_prefetchAt);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal([IPAddress.Parse("8.8.8.8")], (await Resolve(resolver, "example.com")).Addresses);
        }
        Assert.Equal(2, dns.Count);

        dns.Hold = null;
        hold.SetException(new SocketException((int)SocketError.TryAgain));
        await Timeouts.WaitUntilAsync(() => recorder["passage.relay.dns.answers/refreshed"] == 1);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal([IPAddress.Parse("8.8.8.8")], (await Resolve(resolver, "example.com")).Addresses);
        }
        Assert.Equal(2, dns.Count);

        // Run out, the name is looked up as any other.
        _time.Advance(s_defaults.MaxAge - s_prefetchAt);
        await Resolve(resolver, "example.com");
        Assert.Equal(3, dns.Count);
    }

    [Fact]
    public async Task A_failure_is_not_looked_up_ahead()
    {
        var dns = new CountingDns { Error = SocketError.HostNotFound };
        var resolver = Resolver(dns);
        await Resolve(resolver, "gone.example");
        _time.Advance(s_defaults.NegativeMaxAge * 0.95);
        Assert.Equal(ResolveStatus.DnsError, (await Resolve(resolver, "gone.example")).Status);
        Assert.Equal(1, dns.Count);
    }

    [Fact]
    public async Task A_failure_with_a_ttl_is_kept_for_the_smaller_of_its_ttl_and_the_negative_maximum_age()
    {
        var lookups = 0;
        var cache = new DnsCache(
            (_, _) => { lookups++; return Task.FromResult(new DnsAnswer([], SocketError.HostNotFound, TimeSpan.FromSeconds(2))); },
            s_defaults, _time, metrics: null);

        await cache.LookupAsync("gone.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        _time.Advance(TimeSpan.FromSeconds(2) - s_tick);
        await cache.LookupAsync("gone.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(1, lookups);
        _time.Advance(s_tick);
        await cache.LookupAsync("gone.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(2, lookups);
    }

    [Fact]
    public async Task The_cache_keeps_the_raw_answer_never_a_verdict()
    {
        var dns = new CountingDns("8.8.8.8", "8.8.8.8", "10.0.0.1");
        var cache = new DnsCache(DnsCache.FromAddresses(dns.LookupAsync), s_defaults, _time, metrics: null);

        foreach (var _ in Enumerable.Range(0, 2))
        {
            DnsAnswer answer = await cache.LookupAsync("mixed.example", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
            Assert.Null(answer.Error);
            Assert.Equal([IPAddress.Parse("8.8.8.8"), IPAddress.Parse("8.8.8.8"), IPAddress.Parse("10.0.0.1")], answer.Addresses);
        }

        Assert.Equal(1, dns.Count);
    }

    [Theory]
    [InlineData("Example.COM.")]
    [InlineData("EXAMPLE.com.")]
    public async Task Names_are_kept_ignoring_case(string other)
    {
        var dns = new CountingDns("8.8.8.8");
        var resolver = Resolver(dns);

        await Resolve(resolver, "example.com.");
        await Resolve(resolver, other);
        await Resolve(resolver, "www.example.com");

        Assert.Equal(["example.com.", "www.example.com"], dns.Names);
        Assert.Equal(2, resolver.Cache.Count);
    }

    [Fact]
    public async Task A_name_with_a_final_dot_is_another_name_looked_up_as_written()
    {
        var dns = new CountingDns("8.8.8.8");
        var resolver = Resolver(dns);

        await Resolve(resolver, "example.com.");
        await Resolve(resolver, "example.com");

        Assert.Equal(["example.com.", "example.com"], dns.Names);
        Assert.Equal(2, resolver.Cache.Count);
    }

    [Fact]
    public async Task Literals_and_mapped_names_never_reach_the_cache()
    {
        var dns = new CountingDns("8.8.8.8");
        var map = new Dictionary<string, IPAddress[]> { ["origin.internal"] = [IPAddress.Parse("1.1.1.1")] };
        var resolver = Resolver(dns, map: map);

        foreach (var host in new[] { "8.8.8.8", "[2606:4700:4700::1111]", "134744072", "origin.internal", "ORIGIN.internal." })
        {
            Assert.Equal(ResolveStatus.Ok, (await Resolve(resolver, host)).Status);
        }

        Assert.Equal(0, dns.Count);
        Assert.Equal(0, resolver.Cache.Count);
    }

    [Fact]
    public async Task The_cache_holds_at_most_its_size_pushing_out_the_oldest_name()
    {
        var dns = new CountingDns("8.8.8.8");
        var resolver = Resolver(dns, s_defaults with { MaxEntries = 3 });

        for (var i = 0; i < 100; i++)
        {
            await Resolve(resolver, $"n{i}.example");
            Assert.InRange(resolver.Cache.Count, 1, 3);
        }
        Assert.Equal(100, dns.Count);

        // The three newest are kept; an older one is looked up again (and pushes out n97).
        await Resolve(resolver, "n99.example");
        await Resolve(resolver, "n98.example");
        await Resolve(resolver, "n97.example");
        Assert.Equal(100, dns.Count);
        await Resolve(resolver, "n0.example");
        Assert.Equal(101, dns.Count);
        await Resolve(resolver, "n97.example");
        Assert.Equal(102, dns.Count);
    }

    [Fact]
    public async Task Lookups_under_way_count_against_the_size_and_a_pushed_out_one_still_answers_its_callers()
    {
        var hold = Held();
        var dns = new CountingDns { Hold = hold };
        var resolver = Resolver(dns, s_defaults with { MaxEntries = 2 });

        Task<ResolveResult>[] pending = [.. new[] { "a.example", "b.example", "c.example" }.Select(name => resolver.ResolveAsync(name, CancellationToken.None).AsTask())];
        Assert.Equal(2, resolver.Cache.Count);
        Assert.Equal(3, dns.Count);

        hold.SetResult([IPAddress.Parse("8.8.8.8")]);
        Assert.All(await Task.WhenAll(pending).WaitAsync(Timeouts.Default), result => Assert.Equal(ResolveStatus.Ok, result.Status));
        Assert.Equal(2, resolver.Cache.Count);
    }

    public static TheoryData<DnsCacheOptions?> Disabled => new() { null, DnsCacheOptions.Off, s_defaults with { MaxAge = TimeSpan.Zero } };

    [Theory]
    [MemberData(nameof(Disabled))]
    public async Task A_maximum_age_of_zero_looks_every_name_up_each_time(DnsCacheOptions? options)
    {
        var dns = new CountingDns("8.8.8.8");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync, dnsCache: options, timeProvider: _time);

        await Resolve(resolver, "example.com");
        await Resolve(resolver, "example.com");
        Assert.Equal(2, dns.Count);

        var hold = Held();
        dns.Hold = hold;
        Task<ResolveResult> a = resolver.ResolveAsync("example.com", CancellationToken.None).AsTask();
        Task<ResolveResult> b = resolver.ResolveAsync("example.com", CancellationToken.None).AsTask();
        Assert.Equal(4, dns.Count);
        hold.SetResult([IPAddress.Parse("8.8.8.8")]);
        await Task.WhenAll(a, b).WaitAsync(Timeouts.Default);
        Assert.Equal(0, resolver.Cache.Count);
    }

    [Fact]
    public void Refuses_a_negative_age_or_no_room()
    {
        var dns = new CountingDns();
        Assert.Throws<ArgumentOutOfRangeException>(() => Resolver(dns, s_defaults with { MaxAge = Timeout.InfiniteTimeSpan }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Resolver(dns, s_defaults with { NegativeMaxAge = TimeSpan.FromSeconds(-1) }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Resolver(dns, s_defaults with { MaxEntries = 0 }));
    }

    private static TaskCompletionSource<IPAddress[]> Held() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A stand-in for the system resolver that counts its lookups and can hold them open.</summary>
    private sealed class CountingDns(params string[] answer)
    {
        private readonly object _gate = new();
        private readonly List<(string Name, CancellationToken Token)> _lookups = [];

        public string[] Answer { get; set; } = answer;

        public SocketError? Error { get; set; }

        public Exception? Failure { get; set; }

        /// <summary>While set, lookups wait for it (or for their cancellation).</summary>
        public TaskCompletionSource<IPAddress[]>? Hold { get; set; }

        public int Count
        {
            get
            {
                lock (_gate)
                {
                    return _lookups.Count;
                }
            }
        }

        public string[] Names
        {
            get
            {
                lock (_gate)
                {
                    return [.. _lookups.Select(l => l.Name)];
                }
            }
        }

        public CancellationToken Token(int index)
        {
            lock (_gate)
            {
                return _lookups[index].Token;
            }
        }

        public Task<IPAddress[]> LookupAsync(string name, CancellationToken cancellationToken)
        {
            lock (_gate)
            {
                _lookups.Add((name, cancellationToken));
            }

            if (Hold is { } hold)
            {
                return hold.Task.WaitAsync(cancellationToken);
            }

            if (Failure is { } failure)
            {
                return Task.FromException<IPAddress[]>(failure);
            }

            return Error is { } error
                ? Task.FromException<IPAddress[]>(new SocketException((int)error))
                : Task.FromResult<IPAddress[]>([.. Answer.Select(IPAddress.Parse)]);
        }
    }
}
