using System.Net;
using System.Net.Sockets;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

public sealed class DestinationResolverTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(10);

    private static readonly AddressPolicy s_allowPrivate = new(allowPrivate: true, allowedNetworks: []);

    /// <summary>
    /// A client's name is looked up as written: this host's search domains would make <c>vault</c> (or a name that does
    /// not exist, such as <c>vault.nowhere</c>) into <c>vault.corp.passage.test</c>, a host the relay's allow and deny rules
    /// were never asked about. The operator's names (a route's upstream) keep the search list.
    /// </summary>
    [Theory]
    [InlineData("vault")]
    [InlineData("vault.nowhere")]
    public async Task A_client_named_destination_gets_none_of_this_host_search_domains(string name)
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress(name + ".corp.passage.test", 60, "10.20.30.40");
        var conf = new ResolverConf { Servers = [dns.EndPoint], Timeout = TimeSpan.FromSeconds(5), Attempts = 1, Search = ["corp.passage.test"], NoAaaa = true };
        var resolver = new DestinationResolver(s_allowPrivate, dns: conf);

        ResolveResult clients = await resolver.ResolveAsync(name, CancellationToken.None, clientNamed: true).AsTask().WaitAsync(s_timeout);
        Assert.Equal(ResolveStatus.DnsError, clients.Status);
        Assert.Equal(0, dns.Count(name + ".corp.passage.test"));

        ResolveResult operators = await resolver.ResolveAsync(name, CancellationToken.None).AsTask().WaitAsync(s_timeout);
        Assert.Equal(ResolveStatus.Ok, operators.Status);
        Assert.Equal([IPAddress.Parse("10.20.30.40")], operators.Addresses);
    }

    [Fact]
    public async Task A_client_named_destination_is_still_found_in_the_hosts_file()
    {
        await using var dns = new TestDnsServer();
        var conf = new ResolverConf { Servers = [dns.EndPoint], Timeout = TimeSpan.FromSeconds(5), Attempts = 1, Search = ["corp.passage.test"] };
        var resolver = new DestinationResolver(s_allowPrivate, dns: conf);

        // Every hosts(5) file names localhost.
        ResolveResult result = await resolver.ResolveAsync("localhost", CancellationToken.None, clientNamed: true).AsTask().WaitAsync(s_timeout);

        Assert.Equal(ResolveStatus.Ok, result.Status);
        Assert.Contains(result.Addresses, IPAddress.IsLoopback);
        Assert.Empty(dns.Questions);
    }

    [Fact]
    public async Task Returns_checked_addresses_in_order_without_duplicates()
    {
        var dns = new FakeDns("1.1.1.1", "2606:4700:4700::1111", "1.1.1.1", "8.8.8.8");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("example.com", CancellationToken.None);

        Assert.Equal(ResolveStatus.Ok, result.Status);
        Assert.Equal([IPAddress.Parse("1.1.1.1"), IPAddress.Parse("2606:4700:4700::1111"), IPAddress.Parse("8.8.8.8")], result.Addresses);
        Assert.Null(result.RefusedAddress);
        Assert.Null(result.RefusedCategory);
        Assert.Null(result.DnsErrorCode);
        Assert.Equal(["example.com"], dns.Queries);
    }

    [Theory]
    [InlineData("8.8.8.8", "10.0.0.1", "10.0.0.1", AddressCategory.Private)]
    [InlineData("10.0.0.1", "8.8.8.8", "10.0.0.1", AddressCategory.Private)]
    [InlineData("2606:4700::1", "::ffff:127.0.0.1", "::ffff:127.0.0.1", AddressCategory.Loopback)]
    [InlineData("8.8.8.8", "169.254.169.254", "169.254.169.254", AddressCategory.Metadata)]
    [InlineData("8.8.8.8", "64:ff9b::a00:1", "64:ff9b::a00:1", AddressCategory.Private)]
    public async Task Refuses_the_whole_name_when_any_address_is_refused(
        string first, string second, string refused, AddressCategory category)
    {
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: new FakeDns(first, second).LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("rebind.example", CancellationToken.None);

        Assert.Equal(ResolveStatus.Prohibited, result.Status);
        Assert.Empty(result.Addresses);
        Assert.Equal(IPAddress.Parse(refused), result.RefusedAddress);
        Assert.Equal(category, result.RefusedCategory);
    }

    [Fact]
    public async Task Of_a_system_answer_with_hundreds_of_addresses_the_first_of_each_family_are_kept()
    {
        string[] v4 = [.. Enumerable.Range(0, 100).Select(i => $"8.8.{i}.8")];
        string[] v6 = [.. Enumerable.Range(0, 100).Select(i => $"2606:4700::{i + 1:x}")];
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: new FakeDns([.. v6, .. v4]).LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("many.example", CancellationToken.None);

        Assert.Equal(ResolveStatus.Ok, result.Status);
        Assert.Equal([.. v6.Take(DnsAnswer.MaxAddressesPerFamily), .. v4.Take(DnsAnswer.MaxAddressesPerFamily)], result.Addresses.Select(a => a.ToString()));
    }

    [Theory]
    [InlineData("8.8.8.8 10.0.0.1", "10.0.0.1", AddressCategory.Private)]
    [InlineData("2606:4700::1 ::1", "::1", AddressCategory.Loopback)]
    [InlineData("0.0.0.0", "0.0.0.0", AddressCategory.Unspecified)]
    [InlineData("::", "::", AddressCategory.Unspecified)]
    [InlineData("::ffff:127.0.0.1", "::ffff:127.0.0.1", AddressCategory.Loopback)]
    [InlineData("169.254.169.254", "169.254.169.254", AddressCategory.Metadata)]
    [InlineData("::ffff:169.254.169.254", "::ffff:169.254.169.254", AddressCategory.Metadata)]
    [InlineData("::127.0.0.1", "::127.0.0.1", AddressCategory.Loopback)]
    [InlineData("64:ff9b::169.254.169.254", "64:ff9b::a9fe:a9fe", AddressCategory.Metadata)]
    [InlineData("2002:7f00:1::1", "2002:7f00:1::1", AddressCategory.Loopback)]
    public async Task Through_the_relays_own_resolver_a_name_with_any_refused_address_is_refused_whole(
        string answer, string refused, AddressCategory category)
    {
        await using var dns = new TestDnsServer();
        dns.SetAddress("rebind.passage.test", 60, answer.Split(' '));
        var resolver = new DestinationResolver(
            AddressPolicy.PublicOnly, dns: new ResolverConf { Servers = [dns.EndPoint], Attempts = 1 }, dnsCache: new DnsCacheOptions());

        for (var i = 0; i < 2; i++)
        {
            // The second from the cache: addresses are kept, the verdict is made again.
            ResolveResult result = await resolver.ResolveAsync("rebind.passage.test", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);

            Assert.Equal(ResolveStatus.Prohibited, result.Status);
            Assert.Empty(result.Addresses);
            Assert.Equal(IPAddress.Parse(refused), result.RefusedAddress);
            Assert.Equal(category, result.RefusedCategory);
        }

        Assert.Equal(2, dns.Questions.Count); // A and AAAA, once
    }

    [Fact]
    public async Task Records_for_other_names_in_an_answer_are_not_kept_for_them()
    {
        // The server for one name puts an address for another in its answer (out of bailiwick), as a poisoner would.
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                var type = TestDnsServer.QuestionType(query);
                var victim = query[13] == (byte)'v';
                byte[][] records = type != TestDnsServer.A ? []
                    : victim ? [TestDnsServer.RawRecord([0xC0, 12], TestDnsServer.A, 60, [8, 8, 4, 4])]
                    : [TestDnsServer.RawRecord(TestDnsServer.WireName("victim.passage.test"), TestDnsServer.A, 3600, [10, 0, 0, 1]),
                        TestDnsServer.RawRecord([0xC0, 12], TestDnsServer.A, 60, [8, 8, 8, 8])];
                return [TestDnsServer.RawReply(query, 0, records)];
            },
        };
        var resolver = new DestinationResolver(
            AddressPolicy.PublicOnly, dns: new ResolverConf { Servers = [dns.EndPoint], Attempts = 1 }, dnsCache: new DnsCacheOptions());

        ResolveResult poisoner = await resolver.ResolveAsync("attacker.passage.test", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);
        ResolveResult victim = await resolver.ResolveAsync("victim.passage.test", CancellationToken.None).AsTask().WaitAsync(Timeouts.Default);

        Assert.Equal([IPAddress.Parse("8.8.8.8")], poisoner.Addresses);
        Assert.Equal([IPAddress.Parse("8.8.4.4")], victim.Addresses);
        Assert.Equal(2, dns.Count("victim.passage.test"));
    }

    [Fact]
    public async Task Allow_private_accepts_mixed_answers_but_not_metadata()
    {
        var mixed = new DestinationResolver(s_allowPrivate, lookup: new FakeDns("8.8.8.8", "10.0.0.1").LookupAsync);
        Assert.Equal(ResolveStatus.Ok, (await mixed.ResolveAsync("a.example", CancellationToken.None)).Status);

        var metadata = new DestinationResolver(s_allowPrivate, lookup: new FakeDns("10.0.0.1", "169.254.169.254").LookupAsync);
        ResolveResult result = await metadata.ResolveAsync("b.example", CancellationToken.None);
        Assert.Equal(ResolveStatus.Prohibited, result.Status);
        Assert.Equal(AddressCategory.Metadata, result.RefusedCategory);
    }

    [Theory]
    [InlineData(SocketError.HostNotFound)]
    [InlineData(SocketError.TryAgain)]
    [InlineData(SocketError.NoData)]
    [InlineData(SocketError.TimedOut)]
    public async Task Reports_a_failed_lookup_as_a_dns_error(SocketError error)
    {
        var dns = new FakeDns { Error = error };
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("nowhere.example", CancellationToken.None);

        Assert.Equal(ResolveStatus.DnsError, result.Status);
        Assert.Equal(error, result.DnsErrorCode);
        Assert.Empty(result.Addresses);
    }

    [Fact]
    public async Task Reports_an_empty_answer_as_no_addresses()
    {
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: new FakeDns().LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("empty.example", CancellationToken.None);

        Assert.Equal(ResolveStatus.NoAddresses, result.Status);
        Assert.Empty(result.Addresses);
    }

    [Theory]
    [InlineData("")]
    [InlineData("a b.example")]
    [InlineData("example.com\r\nHost: evil")]
    [InlineData("exämple.com")]
    [InlineData("1.2.3.4.5")]
    [InlineData("0x")]
    [InlineData("999.1.1.1")]
    [InlineData("example.123")]
    [InlineData("127.0.0.1.")]
    [InlineData("[::1]:80")]
    [InlineData("host:443")]
    [InlineData("example%00.com")]
    [InlineData("a..b")]
    public async Task Never_looks_up_an_invalid_name(string host)
    {
        var dns = new FakeDns("8.8.8.8");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync(host, CancellationToken.None);

        Assert.Equal(ResolveStatus.InvalidName, result.Status);
        Assert.Empty(dns.Queries);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f.1")]
    [InlineData("0x7f000001")]
    [InlineData("127.1")]
    [InlineData("0177.0.0.1")]
    [InlineData("0x7F.0.0.1")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("[::ffff:7f00:1]")]
    [InlineData("[::1]")]
    [InlineData("::1%lo")]
    [InlineData("[::1%1]")]
    [InlineData("64:ff9b::127.0.0.1")]
    public async Task Refuses_every_loopback_literal_without_a_lookup(string host)
    {
        var dns = new FakeDns("8.8.8.8");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync(host, CancellationToken.None);

        Assert.Equal(ResolveStatus.Prohibited, result.Status);
        Assert.Equal(AddressCategory.Loopback, result.RefusedCategory);
        Assert.Empty(dns.Queries);
    }

    [Theory]
    [InlineData("8.8.8.8", "8.8.8.8")]
    [InlineData("134744072", "8.8.8.8")]
    [InlineData("[2606:4700:4700::1111]", "2606:4700:4700::1111")]
    [InlineData("0000127.0.0.1", "87.0.0.1")]
    public async Task Returns_a_public_literal_without_a_lookup(string host, string expected)
    {
        var dns = new FakeDns("1.1.1.1");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync(host, CancellationToken.None);

        Assert.Equal(ResolveStatus.Ok, result.Status);
        Assert.Equal([IPAddress.Parse(expected)], result.Addresses);
        Assert.Empty(dns.Queries);
    }

    [Theory]
    [InlineData("origin.internal")]
    [InlineData("ORIGIN.Internal")]
    [InlineData("origin.internal.")]
    [InlineData("Origin.Internal.")]
    public async Task Uses_the_static_map_ignoring_case_and_a_final_dot(string host)
    {
        var dns = new FakeDns("8.8.8.8");
        var map = new Dictionary<string, IPAddress[]> { ["Origin.Internal"] = [IPAddress.Parse("1.1.1.1")] };
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, map, dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync(host, CancellationToken.None);

        Assert.Equal(ResolveStatus.Ok, result.Status);
        Assert.Equal([IPAddress.Parse("1.1.1.1")], result.Addresses);
        Assert.Empty(dns.Queries);
    }

    [Fact]
    public async Task Checks_mapped_addresses_against_the_policy()
    {
        var dns = new FakeDns("8.8.8.8");
        var map = new Dictionary<string, IPAddress[]>
        {
            ["origin.internal."] = [IPAddress.Parse("10.0.0.5")],
            ["metadata.internal"] = [IPAddress.Parse("169.254.169.254")],
        };

        var strict = new DestinationResolver(AddressPolicy.PublicOnly, map, dns.LookupAsync);
        ResolveResult refused = await strict.ResolveAsync("origin.internal", CancellationToken.None);
        Assert.Equal(ResolveStatus.Prohibited, refused.Status);
        Assert.Equal(IPAddress.Parse("10.0.0.5"), refused.RefusedAddress);
        Assert.Equal(AddressCategory.Private, refused.RefusedCategory);

        var lenient = new DestinationResolver(s_allowPrivate, map, dns.LookupAsync);
        ResolveResult allowed = await lenient.ResolveAsync("origin.internal", CancellationToken.None);
        Assert.Equal(ResolveStatus.Ok, allowed.Status);
        Assert.Equal([IPAddress.Parse("10.0.0.5")], allowed.Addresses);
        Assert.Equal(ResolveStatus.Prohibited, (await lenient.ResolveAsync("metadata.internal", CancellationToken.None)).Status);

        Assert.Empty(dns.Queries);
    }

    [Fact]
    public async Task Looks_up_names_that_are_not_in_the_map()
    {
        var dns = new FakeDns("8.8.8.8");
        var map = new Dictionary<string, IPAddress[]> { ["origin.internal"] = [IPAddress.Parse("1.1.1.1")] };
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, map, dns.LookupAsync);

        ResolveResult result = await resolver.ResolveAsync("other.internal", CancellationToken.None);

        Assert.Equal([IPAddress.Parse("8.8.8.8")], result.Addresses);
        Assert.Equal(["other.internal"], dns.Queries);
    }

    [Theory]
    [InlineData("1.2.3.4")]
    [InlineData("bad name")]
    [InlineData("")]
    public void Refuses_a_map_key_that_is_not_a_name(string key)
    {
        var map = new Dictionary<string, IPAddress[]> { [key] = [IPAddress.Parse("1.1.1.1")] };
        Assert.Throws<ArgumentException>(() => new DestinationResolver(AddressPolicy.PublicOnly, map));
    }

    [Fact]
    public void Refuses_a_map_entry_without_addresses_or_given_twice()
    {
        var empty = new Dictionary<string, IPAddress[]> { ["a.example"] = [] };
        Assert.Throws<ArgumentException>(() => new DestinationResolver(AddressPolicy.PublicOnly, empty));

        var twice = new Dictionary<string, IPAddress[]>
        {
            ["a.example"] = [IPAddress.Parse("1.1.1.1")],
            ["A.example."] = [IPAddress.Parse("8.8.8.8")],
        };
        Assert.Throws<ArgumentException>(() => new DestinationResolver(AddressPolicy.PublicOnly, twice));
    }

    [Fact]
    public async Task Propagates_the_callers_cancellation()
    {
        var dns = new FakeDns { Hang = true };
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);
        using var cancellation = new CancellationTokenSource();

        Task<ResolveResult> pending = resolver.ResolveAsync("slow.example", cancellation.Token).AsTask();
        await cancellation.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => pending.WaitAsync(s_timeout));
    }

    [Fact]
    public async Task Treats_a_lookup_failure_after_cancellation_as_cancellation()
    {
        using var cancellation = new CancellationTokenSource();
        var resolver = new DestinationResolver(
            AddressPolicy.PublicOnly,
            lookup: async (_, _) =>
            {
                await cancellation.CancelAsync();
                throw new SocketException((int)SocketError.TryAgain);
            });

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => resolver.ResolveAsync("slow.example", cancellation.Token).AsTask().WaitAsync(s_timeout));
    }

    [Fact]
    public async Task Throws_before_anything_when_already_cancelled()
    {
        var dns = new FakeDns("8.8.8.8");
        var resolver = new DestinationResolver(AddressPolicy.PublicOnly, lookup: dns.LookupAsync);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(
            () => resolver.ResolveAsync("example.com", new CancellationToken(canceled: true)).AsTask());
        Assert.Empty(dns.Queries);
    }

    [Fact]
    public async Task Refuses_localhost_from_the_system_resolver_unless_private_is_allowed()
    {
        using var timeout = new CancellationTokenSource(s_timeout);

        ResolveResult strict = await new DestinationResolver(AddressPolicy.PublicOnly).ResolveAsync("localhost", timeout.Token);
        Assert.Equal(ResolveStatus.Prohibited, strict.Status);
        Assert.Equal(AddressCategory.Loopback, strict.RefusedCategory);

        ResolveResult lenient = await new DestinationResolver(s_allowPrivate).ResolveAsync("localhost", timeout.Token);
        Assert.Equal(ResolveStatus.Ok, lenient.Status);
        Assert.NotEmpty(lenient.Addresses);
        Assert.All(lenient.Addresses, address => Assert.True(IPAddress.IsLoopback(address)));
    }

    private sealed class FakeDns(params string[] answer)
    {
        public List<string> Queries { get; } = [];

        public SocketError? Error { get; init; }

        public bool Hang { get; init; }

        public async Task<IPAddress[]> LookupAsync(string host, CancellationToken cancellationToken)
        {
            Queries.Add(host);
            if (Hang)
            {
                await Task.Delay(Timeout.InfiniteTimeSpan, cancellationToken);
            }

            if (Error is { } error)
            {
                throw new SocketException((int)error);
            }

            return [.. answer.Select(IPAddress.Parse)];
        }
    }
}
