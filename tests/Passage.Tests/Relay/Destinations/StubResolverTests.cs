using System.Net;
using System.Net.Sockets;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

/// <summary>The relay's own resolver against a real DNS server on loopback (UDP and TCP).</summary>
public sealed class StubResolverTests
{
    private static ResolverConf Conf(params IPEndPoint[] servers) =>
        new() { Servers = servers, Timeout = TimeSpan.FromSeconds(5), Attempts = 1 };

    private static StubResolver Resolver(ResolverConf conf) => new(conf, hosts: null);

    [Fact]
    public async Task Asks_for_both_families_and_keeps_the_answer_no_longer_than_its_smallest_ttl()
    {
        await using var dns = new TestDnsServer();
        dns.Set("web.passage.test", TestDnsServer.A, new TestDnsServer.Rr(300, IPAddress.Parse("192.0.2.1")), new TestDnsServer.Rr(120, IPAddress.Parse("192.0.2.2")));
        dns.Set("web.passage.test", TestDnsServer.Aaaa, new TestDnsServer.Rr(200, IPAddress.Parse("2001:db8::1")));

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("web.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Null(answer.Error);
        Assert.Equal(["192.0.2.1", "192.0.2.2", "2001:db8::1"], answer.Addresses.Select(a => a.ToString()).Order());
        Assert.Equal(TimeSpan.FromSeconds(120), answer.Ttl);
        Assert.Equal(2, dns.Count("web.passage.test", "udp"));
        Assert.Equal(0, dns.Count("web.passage.test", "tcp"));
    }

    [Fact]
    public async Task Follows_a_cname_chain_to_its_addresses_and_counts_the_aliases_ttls()
    {
        await using var dns = new TestDnsServer();
        dns.Set("alias.passage.test", TestDnsServer.Cname, new TestDnsServer.Rr(30, Target: "middle.passage.test"));
        dns.Set("middle.passage.test", TestDnsServer.Cname, new TestDnsServer.Rr(900, Target: "end.passage.test"));
        dns.SetAddress("end.passage.test", 600, "192.0.2.7");

        var answer = await Resolver(Conf(dns.EndPoint) with { NoAaaa = true }).LookupAsync("ALIAS.passage.test.", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.7")], answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(30), answer.Ttl);
        Assert.All(dns.Questions, q => Assert.Equal(TestDnsServer.A, q.Type));
    }

    [Theory]
    [InlineData("gone.passage.test", 30, 600, 300, 30)] // no such name at the chain's end
    [InlineData("mail.passage.test", 30, 600, 300, 30)] // no addresses at the chain's end
    [InlineData("gone.passage.test", 900, 600, 45, 45)]
    [InlineData("mail.passage.test", 900, 20, 300, 20)]
    public async Task A_negative_answer_through_a_cname_chain_is_kept_no_longer_than_the_chain(string end, uint aliasTtl, uint soaTtl, uint minimum, int seconds)
    {
        // RFC 2308 §5: the aliases that led to the absence expire with their TTLs, whatever the SOA allows.
        await using var dns = new TestDnsServer { NegativeSoa = (soaTtl, minimum) };
        dns.Set("alias.passage.test", TestDnsServer.Cname, new TestDnsServer.Rr(aliasTtl, Target: end));
        dns.Set("mail.passage.test", 15, new TestDnsServer.Rr(3600, Target: "mx.passage.test")); // an MX, no addresses

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("alias.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(end == "mail.passage.test" ? (SocketError?)null : SocketError.HostNotFound, answer.Error);
        Assert.Empty(answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(seconds), answer.Ttl);
    }

    [Fact]
    public async Task A_truncated_reply_is_asked_again_over_tcp()
    {
        await using var dns = new TestDnsServer { TruncateUdp = true };
        dns.SetAddress("big.passage.test", 60, "192.0.2.9", "2001:db8::9");

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("big.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(2, answer.Addresses.Length);
        Assert.Equal(2, dns.Count("big.passage.test", "udp"));
        Assert.Equal(2, dns.Count("big.passage.test", "tcp"));
    }

    [Fact]
    public async Task Of_an_answer_with_hundreds_of_addresses_the_first_of_each_family_are_kept()
    {
        // Over TCP a name's own DNS server can send thousands, each checked on every connection and kept in the cache.
        await using var dns = new TestDnsServer { TruncateUdp = true };
        string[] v4 = [.. Enumerable.Range(0, 200).Select(i => $"203.0.{113 + i / 100}.{i % 100}")];
        string[] v6 = [.. Enumerable.Range(0, 200).Select(i => $"2001:db8::{i + 1:x}")];
        dns.SetAddress("many.passage.test", 60, [.. v4, .. v6]);

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("many.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(v4.Take(DnsAnswer.MaxAddressesPerFamily), answer.Addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork).Select(a => a.ToString()));
        Assert.Equal(v6.Take(DnsAnswer.MaxAddressesPerFamily), answer.Addresses.Where(a => a.AddressFamily == AddressFamily.InterNetworkV6).Select(a => a.ToString()));
        Assert.Equal(2, dns.Count("many.passage.test", "tcp"));
    }

    [Fact]
    public async Task A_reply_with_another_id_is_ignored_and_the_real_one_taken()
    {
        await using var dns = new TestDnsServer { ForgeFirst = IPAddress.Parse("203.0.113.66") };
        dns.SetAddress("bank.passage.test", 60, "192.0.2.10");

        var answer = await Resolver(Conf(dns.EndPoint) with { NoAaaa = true }).LookupAsync("bank.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.10")], answer.Addresses);
    }

    [Fact]
    public async Task A_server_that_is_not_there_or_fails_is_passed_over_for_the_next()
    {
        await using var failing = new TestDnsServer { FailWith = 2 };
        await using var dns = new TestDnsServer();
        dns.SetAddress("next.passage.test", 60, "192.0.2.11");
        var closed = new IPEndPoint(IPAddress.Loopback, Loopback.ClosedPort(SocketType.Dgram));

        var answer = await Resolver(Conf(closed, failing.EndPoint, dns.EndPoint)).LookupAsync("next.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.11")], answer.Addresses);
        Assert.Equal(2, failing.Count("next.passage.test"));
    }

    [Fact]
    public async Task A_silent_server_is_waited_for_its_timeout_then_the_next_is_asked()
    {
        await using var silent = new TestDnsServer();
        silent.Silent["slow.passage.test"] = true;
        await using var dns = new TestDnsServer();
        dns.SetAddress("slow.passage.test", 60, "192.0.2.12");
        var conf = Conf(silent.EndPoint, dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(300) };

        var answer = await Resolver(conf).LookupAsync("slow.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.12")], answer.Addresses);
        Assert.Equal(2, silent.Count("slow.passage.test"));
    }

    [Fact]
    public async Task When_one_family_is_never_answered_the_other_is_taken_after_a_short_grace_and_kept_briefly()
    {
        await using var dns = new TestDnsServer { DropType = TestDnsServer.Aaaa };
        dns.SetAddress("v4only.passage.test", 3600, "192.0.2.15");
        await using var second = new TestDnsServer();
        var conf = Conf(dns.EndPoint, second.EndPoint) with { Timeout = TimeSpan.FromSeconds(30), Attempts = 2 };

        // Well before the server's 30 s timeout; a lookup that waited for the AAAA reply would throw TimeoutException here.
        var answer = await Resolver(conf).LookupAsync("v4only.passage.test", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal([IPAddress.Parse("192.0.2.15")], answer.Addresses);
        Assert.Equal(StubResolver.PartialAnswerTtl, answer.Ttl);
        Assert.Empty(second.Questions);
    }

    [Fact]
    public async Task When_one_family_says_the_name_does_not_exist_the_other_is_waited_for_only_a_short_grace()
    {
        // No such name is said for every type (RFC 8020): a server that drops AAAA questions must not hold the answer.
        await using var dns = new TestDnsServer { DropType = TestDnsServer.Aaaa, NegativeSoa = (600, 45) };
        await using var second = new TestDnsServer();
        var conf = Conf(dns.EndPoint, second.EndPoint) with { Timeout = TimeSpan.FromSeconds(30) };

        // Well before the server's 30 s timeout; a lookup that waited for the AAAA reply would throw TimeoutException here.
        var answer = await Resolver(conf).LookupAsync("gone.passage.test", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Equal(SocketError.HostNotFound, answer.Error);
        Assert.Equal(TimeSpan.FromSeconds(45), answer.Ttl);
        Assert.Empty(second.Questions);
    }

    [Fact]
    public async Task Addresses_of_one_family_stand_when_the_server_says_no_such_name_to_the_other_first()
    {
        // RFC 4074 §4.2: some servers answer AAAA questions of names with A records with no such name.
        byte[]? aQuery = null;
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                if (TestDnsServer.QuestionType(query) == TestDnsServer.A)
                {
                    aQuery = query;
                    return [];
                }

                return [TestDnsServer.RawReply(query, 3, []), TestDnsServer.RawReply(aQuery!, 0, [TestDnsServer.RawRecord([0xC0, 12], TestDnsServer.A, 60, [192, 0, 2, 17])])];
            },
        };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("v4.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Null(answer.Error);
        Assert.Equal([IPAddress.Parse("192.0.2.17")], answer.Addresses);
    }

    [Fact]
    public async Task When_every_server_fails_the_answer_is_try_again_and_not_kept_by_ttl()
    {
        await using var dns = new TestDnsServer { FailWith = 5 };

        var answer = await Resolver(Conf(dns.EndPoint) with { Attempts = 2 }).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(SocketError.TryAgain, answer.Error);
        Assert.Null(answer.Ttl);
        Assert.Equal(4, dns.Count("x.passage.test"));
    }

    [Fact]
    public async Task When_no_server_says_anything_the_answer_is_timed_out_and_each_wait_is_counted()
    {
        await using var silent = new TestDnsServer();
        silent.Silent["quiet.passage.test"] = true;
        using var metrics = new Passage.Telemetry.RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var conf = Conf(silent.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(200), Attempts = 2 };

        var answer = await new StubResolver(conf, null, metrics).LookupAsync("quiet.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(SocketError.TimedOut, answer.Error);
        Assert.Equal(4, silent.Count("quiet.passage.test"));
        Assert.Equal(4, recorder["passage.relay.dns.queries/timeout"]);
    }

    [Fact]
    public async Task Each_servers_answer_is_counted_by_how_it_answered()
    {
        await using var failing = new TestDnsServer { FailWith = 2 };
        await using var dns = new TestDnsServer { TruncateUdp = true };
        dns.SetAddress("counted.passage.test", 60, "192.0.2.16");
        var closed = new IPEndPoint(IPAddress.Loopback, Loopback.ClosedPort(SocketType.Dgram));
        using var metrics = new Passage.Telemetry.RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);

        var answer = await new StubResolver(Conf(closed, failing.EndPoint, dns.EndPoint), null, metrics)
            .LookupAsync("counted.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.16")], answer.Addresses);
        Assert.Equal(2, recorder["passage.relay.dns.queries/unreachable"]);
        Assert.Equal(2, recorder["passage.relay.dns.queries/server_failure"]);
        Assert.Equal(2, recorder["passage.relay.dns.queries/truncated"]);
        Assert.Equal(2, recorder["passage.relay.dns.queries/answered"]);
    }

    [Theory]
    [InlineData("missing.passage.test", true, 1)]
    [InlineData("mail.passage.test", true, 1)]
    [InlineData("missing.passage.test", false, 2)]
    [InlineData("mail.passage.test", false, 2)]
    public async Task A_negative_answer_is_kept_only_when_it_has_an_soa(string name, bool soa, int lookups)
    {
        // RFC 2308 §5: without an SOA in the authority section there is no TTL to keep it by, so it is not kept.
        await using var dns = new TestDnsServer { NegativeSoa = soa ? (600, 45) : null };
        dns.Set("mail.passage.test", 15, new TestDnsServer.Rr(60, Target: "mx.passage.test")); // an MX, no addresses
        var resolver = new DestinationResolver(
            AddressPolicy.PublicOnly, dnsCache: new DnsCacheOptions(), timeProvider: new ManualTimeProvider(), dns: Conf(dns.EndPoint));

        for (var i = 0; i < 2; i++)
        {
            var result = await resolver.ResolveAsync(name, CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal(name == "mail.passage.test" ? ResolveStatus.NoAddresses : ResolveStatus.DnsError, result.Status);
        }

        Assert.Equal(2 * lookups, dns.Count(name)); // A and AAAA, per lookup
    }

    [Fact]
    public async Task Addresses_beside_the_other_familys_empty_answer_without_an_soa_are_kept_briefly()
    {
        await using var dns = new TestDnsServer { NegativeSoa = null };
        dns.SetAddress("v4only.passage.test", 3600, "192.0.2.18");

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("v4only.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.18")], answer.Addresses);
        Assert.Equal(StubResolver.PartialAnswerTtl, answer.Ttl);
    }

    [Fact]
    public async Task No_such_name_is_host_not_found_kept_for_the_soa_minimum()
    {
        await using var dns = new TestDnsServer { NegativeSoa = (600, 45) };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("missing.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(SocketError.HostNotFound, answer.Error);
        Assert.Empty(answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(45), answer.Ttl);
    }

    [Fact]
    public async Task A_name_without_addresses_of_either_family_has_no_addresses_and_no_error()
    {
        await using var dns = new TestDnsServer { NegativeSoa = (20, 300) };
        dns.Set("mail.passage.test", 15, new TestDnsServer.Rr(60, Target: "mx.passage.test")); // an MX, say

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("mail.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Null(answer.Error);
        Assert.Empty(answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(20), answer.Ttl);
    }

    [Fact]
    public async Task A_short_name_is_tried_under_the_search_domains_first()
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress("svc.corp.passage.test", 60, "192.0.2.13");
        var conf = Conf(dns.EndPoint) with { Search = ["other.passage.test", "corp.passage.test"], NoAaaa = true };

        var answer = await Resolver(conf).LookupAsync("svc", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("192.0.2.13")], answer.Addresses);
        Assert.Equal(["other.passage.test", "corp.passage.test"], dns.Questions.Select(q => q.Name["svc.".Length..]));
    }

    [Fact]
    public async Task After_a_name_every_server_was_silent_to_the_rest_of_the_search_list_is_not_asked()
    {
        await using var dns = new TestDnsServer();
        foreach (var name in new[] { "svc.a.passage.test", "svc.b.passage.test", "svc" })
        {
            dns.Silent[name] = true;
        }
        var conf = Conf(dns.EndPoint) with { Search = ["a.passage.test", "b.passage.test"], Timeout = TimeSpan.FromMilliseconds(200) };

        var answer = await Resolver(conf).LookupAsync("svc", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(SocketError.TimedOut, answer.Error);
        Assert.Equal(["svc.a.passage.test"], dns.Questions.Select(q => q.Name).Distinct());
    }

    [Fact]
    public async Task Resolv_conf_is_read_again_when_it_changes_and_given_servers_stand()
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress("svc.one.passage.test", 60, "192.0.2.21");
        dns.SetAddress("svc.two.passage.test", 60, "192.0.2.22");
        using var directory = new TemporaryDirectory();
        var path = Path.Combine(directory.Path, "resolv.conf");
        await File.WriteAllTextAsync(path, "nameserver 192.0.2.53\nsearch one.passage.test\noptions no-aaaa\n");
        var conf = ResolverConf.Load(path) with { Servers = [dns.EndPoint], GivenServers = [dns.EndPoint] };
        var resolver = Resolver(conf);

        Assert.Equal([IPAddress.Parse("192.0.2.21")], (await resolver.LookupAsync("svc", CancellationToken.None).WaitAsync(Timeouts.Default)).Addresses);

        await File.WriteAllTextAsync(path, "nameserver 192.0.2.53\nsearch two.passage.test\noptions no-aaaa\n# longer than before\n");
        Assert.Equal([IPAddress.Parse("192.0.2.22")], (await resolver.LookupAsync("svc", CancellationToken.None).WaitAsync(Timeouts.Default)).Addresses);
        Assert.Equal([dns.EndPoint], resolver.Conf.Servers);
    }

    [Fact]
    public async Task The_callers_cancellation_ends_a_lookup_at_once()
    {
        await using var dns = new TestDnsServer();
        dns.Silent["hang.passage.test"] = true;
        using var cts = new CancellationTokenSource();
        var lookup = Resolver(Conf(dns.EndPoint) with { Timeout = TimeSpan.FromSeconds(30) }).LookupAsync("hang.passage.test", cts.Token);
        while (dns.Count("hang.passage.test") < 2)
        {
            await Task.Delay(10);
        }

        // Well before the server's 30 s timeout; a lookup that waited for it would throw TimeoutException here.
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lookup.WaitAsync(TimeSpan.FromSeconds(20)));
    }

    [Fact]
    public async Task A_name_in_the_hosts_file_is_answered_from_it_and_the_file_is_read_again_when_it_changes()
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress("db.passage.test", 60, "192.0.2.14");
        using var directory = new TemporaryDirectory();
        var path = Path.Combine(directory.Path, "hosts");
        await File.WriteAllTextAsync(path, "# local\n10.1.2.3  db.passage.test db\n::1 DB.passage.test\n");
        var resolver = new StubResolver(Conf(dns.EndPoint), new HostsFile(path));

        var answer = await resolver.LookupAsync("db.passage.test.", CancellationToken.None);
        Assert.Equal(["10.1.2.3", "::1"], answer.Addresses.Select(a => a.ToString()).Order());
        Assert.Null(answer.Ttl);
        Assert.Empty(dns.Questions);

        await File.WriteAllTextAsync(path, "10.9.9.9 other.passage.test\n# and a longer file than before\n");
        answer = await resolver.LookupAsync("db.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        Assert.Equal([IPAddress.Parse("192.0.2.14")], answer.Addresses.Where(a => a.AddressFamily == AddressFamily.InterNetwork));
    }

    [Fact]
    public async Task A_hosts_file_behind_a_symbolic_link_is_read_again_when_the_file_it_leads_to_changes()
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress("db.passage.test", 60, "192.0.2.14");
        using var directory = new TemporaryDirectory();
        var target = directory.Write("hosts.managed", "10.1.2.3 db.passage.test\n");
        var path = Path.Combine(directory.Path, "hosts");
        File.CreateSymbolicLink(path, target);
        var resolver = new StubResolver(Conf(dns.EndPoint) with { NoAaaa = true }, new HostsFile(path));
        Assert.Equal([IPAddress.Parse("10.1.2.3")], (await resolver.LookupAsync("db.passage.test", CancellationToken.None)).Addresses);

        // The link keeps its length and time; only the file it leads to changes.
        await File.WriteAllTextAsync(target, "10.9.9.9 other.passage.test\n# and a longer file than before\n");
        var answer = await resolver.LookupAsync("db.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        Assert.Equal([IPAddress.Parse("192.0.2.14")], answer.Addresses);
    }
}
