using System.Net;
using System.Net.Sockets;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

/// <summary>
/// The relay's own resolver against DNS servers on loopback that break the protocol, forge, lie or stall: every reply
/// is untrusted bytes from a real socket, and none may give an address it should not, hold a lookup past its server's
/// timeout, or throw.
/// </summary>
public sealed class StubResolverHostileServerTests
{
    private static readonly byte[] QuestionName = [0xC0, 12];

    private static readonly IPAddress Real = IPAddress.Parse("192.0.2.80");

    private static ResolverConf Conf(params IPEndPoint[] servers) =>
        new() { Servers = servers, Timeout = TimeSpan.FromSeconds(5), Attempts = 1 };

    private static StubResolver Resolver(ResolverConf conf) => new(conf, hosts: null);

    private static ushort Type(byte[] query) => TestDnsServer.QuestionType(query);

    /// <summary>The sound reply: <see cref="Real"/> for A, nothing for AAAA.</summary>
    private static byte[] Good(byte[] query) => TestDnsServer.RawReply(
        query, 0, Type(query) == TestDnsServer.A ? [TestDnsServer.RawRecord(QuestionName, TestDnsServer.A, 60, Real.GetAddressBytes())] : []);

    private static byte[] Record(byte[] owner, ushort type, byte[] data) => TestDnsServer.RawRecord(owner, type, 60, data);

    /// <summary>A reply to <paramref name="query"/> with a loopback address of its type.</summary>
    private static byte[] Forged(byte[] query) => TestDnsServer.RawReply(
        query, 0, [Record(QuestionName, Type(query), Type(query) == TestDnsServer.A ? [127, 0, 0, 1] : IPAddress.IPv6Loopback.GetAddressBytes())]);

    /// <summary>A bare header answering <paramref name="query"/> with <paramref name="rcode"/>: no question, no records.</summary>
    private static byte[] WithoutQuestion(byte[] query, int rcode) => [query[0], query[1], 0x81, (byte)(0x80 | rcode), 0, 0, 0, 0, 0, 0, 0, 0];

    /// <summary>A reply that is not a reply to <paramref name="query"/>, or cannot be read, carrying loopback if it were taken.</summary>
    private static byte[] Bad(string kind, byte[] query)
    {
        byte[] loopback = [127, 0, 0, 1];
        byte[] forged = Forged(query);
        int questionEnd = TestDnsServer.QuestionEnd(query);
        switch (kind)
        {
            case "header only": return forged[..12];
            case "more answers than it holds": forged[7] = 2; return forged;
            case "record data past the end": forged[forged.Length - (Type(query) == TestDnsServer.A ? 4 : 16) - 2] = 0xFF; return forged;
            case "pointer loop": return TestDnsServer.RawReply(query, 0, [Record([1, (byte)'x', 0xC0, (byte)questionEnd], TestDnsServer.A, loopback)]);
            case "forward pointer": return TestDnsServer.RawReply(query, 0, [Record([0xC0, (byte)(questionEnd + 2)], TestDnsServer.A, loopback)]);
            case "name over 255 bytes":
                return TestDnsServer.RawReply(query, 0, [Record([.. Enumerable.Repeat((byte[])[63, .. Enumerable.Repeat((byte)'a', 63)], 5).SelectMany(l => l), 0], TestDnsServer.A, loopback)]);
            case "label type 0x40": return TestDnsServer.RawReply(query, 0, [Record([0x41, (byte)'a', 0], TestDnsServer.A, loopback)]);
            case "another name": forged[13] ^= 0x01; return forged;
            case "another type": forged[questionEnd - 3] ^= 0x40; return forged;
            case "another class": forged[questionEnd - 1] = 3; return forged;
            case "another id": forged[1] ^= 0x01; return forged;
            case "a query": forged[2] &= 0x7F; return forged;
            case "no question": forged[5] = 0; return forged;
            case "two questions": forged[5] = 2; return forged;
            case "empty": return [];
            case "no question, no such name": return WithoutQuestion(query, 3);
            case "no question, refused, another id": return WithoutQuestion([query[0], (byte)(query[1] ^ 0x01)], 5);
            default: throw new ArgumentOutOfRangeException(nameof(kind), kind, null);
        }
    }

    public static TheoryData<string> BadReplies() =>
    [
        "header only", "more answers than it holds", "record data past the end", "pointer loop", "forward pointer", "name over 255 bytes",
        "label type 0x40", "another name", "another type", "another class", "another id", "a query", "no question", "two questions", "empty",
        "no question, no such name", "no question, refused, another id",
    ];

    [Theory]
    [MemberData(nameof(BadReplies))]
    public async Task A_reply_that_cannot_be_read_or_is_not_for_the_question_is_ignored_and_the_real_one_taken(string kind)
    {
        await using var dns = new TestDnsServer { RawUdp = query => [Bad(kind, query), Good(query)] };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
    }

    [Fact]
    public async Task A_server_that_sends_only_unreadable_replies_is_passed_over_at_its_timeout()
    {
        await using var bad = new TestDnsServer { RawUdp = query => [Bad("pointer loop", query), Bad("another id", query)] };
        await using var dns = new TestDnsServer { RawUdp = query => [Good(query)] };

        var answer = await Resolver(Conf(bad.EndPoint, dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(300) })
            .LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
    }

    [Theory]
    [InlineData(1)] // format error
    [InlineData(2)] // server failure
    [InlineData(4)] // not implemented
    [InlineData(5)] // refused
    public async Task An_error_reply_without_the_question_passes_the_server_over_at_once(int rcode)
    {
        // Some servers leave the question out of an error reply (RFC 1035 does not require it): matched by its ID,
        // from the server's address and port, it fails the question there rather than costing the server's timeout.
        await using var failing = new TestDnsServer { RawUdp = query => [WithoutQuestion(query, rcode)] };
        await using var dns = new TestDnsServer { RawUdp = query => [Good(query)] };
        using var metrics = new Passage.Telemetry.RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);

        var answer = await new StubResolver(Conf(failing.EndPoint, dns.EndPoint), null, metrics)
            .LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
        Assert.Equal(2, recorder["passage.relay.dns.queries/server_failure"]);
        Assert.Equal(0, recorder["passage.relay.dns.queries/timeout"]);
    }

    [Fact]
    public async Task A_server_that_only_refuses_without_the_question_is_a_dns_error_not_a_timeout()
    {
        await using var dns = new TestDnsServer { RawUdp = query => [WithoutQuestion(query, 5)] };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal(SocketError.TryAgain, answer.Error);
    }

    [Fact]
    public async Task A_reply_with_the_right_id_from_another_port_is_dropped()
    {
        using var spoofer = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        spoofer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        TestDnsServer? server = null;
        await using var dns = server = new TestDnsServer
        {
            RawUdp = query =>
            {
                // The forged reply is sent first and reaches the resolver's port; only the server's own may be taken.
                spoofer.SendTo(Forged(query), server!.LastClient!);
                return [Good(query)];
            },
        };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
    }

    public static TheoryData<string> BrokenTcp() => ["closed mid-message", "silent", "length beyond the message", "length zero", "truncated again"];

    [Theory]
    [MemberData(nameof(BrokenTcp))]
    public async Task A_truncated_reply_whose_tcp_answer_fails_ends_at_the_servers_timeout_and_the_next_server_answers(string kind)
    {
        await using var bad = new TestDnsServer
        {
            RawUdp = query => [TestDnsServer.RawReply(query, 0, [], truncated: true)],
            RawTcp = async (query, connection) =>
            {
                byte[] reply = kind == "truncated again" ? TestDnsServer.RawReply(query, 0, [], truncated: true) : Forged(query);
                byte[] framed = [(byte)(reply.Length >> 8), (byte)reply.Length, .. reply];
                switch (kind)
                {
                    case "closed mid-message":
                        await connection.SendAsync(framed[..10]);
                        connection.Shutdown(SocketShutdown.Both);
                        return;
                    case "length beyond the message":
                        framed[1] += 10;
                        break;
                    case "length zero":
                        framed[0] = framed[1] = 0;
                        break;
                }

                if (kind != "silent")
                {
                    await connection.SendAsync(framed);
                }

                // Held open: only the resolver's timeout ends the wait for the rest.
                await connection.ReceiveAsync(new byte[1]);
            },
        };
        await using var dns = new TestDnsServer { RawUdp = query => [Good(query)] };

        var answer = await Resolver(Conf(bad.EndPoint, dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(300) })
            .LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
        Assert.Contains(bad.Questions, q => q.Transport == "tcp");
    }

    [Fact]
    public async Task A_truncated_reply_whose_tcp_answer_hangs_leaves_the_other_familys_addresses_standing()
    {
        // The AAAA reply comes truncated ahead of the A reply; over TCP the server takes the question and says nothing.
        byte[]? aQuery = null;
        byte[]? aaaaQuery = null;
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                if (Type(query) == TestDnsServer.A)
                {
                    aQuery = query;
                }
                else
                {
                    aaaaQuery = query;
                }

                return aQuery is null || aaaaQuery is null ? [] : [TestDnsServer.RawReply(aaaaQuery, 0, [], truncated: true), Good(aQuery)];
            },
            RawTcp = async (_, connection) => await connection.ReceiveAsync(new byte[1]),
        };
        using var metrics = new Passage.Telemetry.RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);

        var conf = Conf(dns.EndPoint) with { Timeout = TimeSpan.FromSeconds(30) };

        // Well before the server's 30 s timeout: the TCP retry, as a reply over UDP would, gets the short grace only.
        var answer = await new StubResolver(conf, null, metrics).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(20));

        Assert.Null(answer.Error);
        Assert.Equal([Real], answer.Addresses);
        Assert.Equal(StubResolver.PartialAnswerTtl, answer.Ttl);
        Assert.Equal(1, recorder["passage.relay.dns.queries/truncated"]);
        Assert.Equal(1, recorder["passage.relay.dns.queries/answered"]);
    }

    public static TheoryData<string, string[]> OddAnswers() => new()
    {
        // Records the chain from the question's name does not reach are not its addresses.
        { "an address of another name", ["192.0.2.80"] },
        { "a cname loop", [] },
        { "a chain longer than 16 aliases", [] },
        { "a cname to localhost without its address", [] },
        { "an A of 3 bytes", [] },
        { "an A of 16 bytes", [] },
        { "an AAAA of 4 bytes", [] },
        { "an address of another class", [] },
    };

    [Theory]
    [MemberData(nameof(OddAnswers))]
    public async Task Only_addresses_of_the_chain_from_the_questions_name_and_of_the_right_size_are_taken(string kind, string[] expected)
    {
        static byte[] Name(string name) => TestDnsServer.WireName(name);
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                byte[][] records = kind switch
                {
                    "an address of another name" => [Record(Name("y.passage.test"), TestDnsServer.A, [127, 0, 0, 1]), Record(QuestionName, TestDnsServer.A, Real.GetAddressBytes())],
                    "a cname loop" =>
                    [
                        Record(QuestionName, TestDnsServer.Cname, Name("b.passage.test")),
                        Record(Name("b.passage.test"), TestDnsServer.Cname, Name("x.passage.test")),
                        Record(Name("b.passage.test"), TestDnsServer.A, [127, 0, 0, 1]),
                    ],
                    "a chain longer than 16 aliases" =>
                    [
                        .. Enumerable.Range(0, 20).Select(i => Record(i == 0 ? QuestionName : Name($"c{i}.passage.test"), TestDnsServer.Cname, Name($"c{i + 1}.passage.test"))),
                        Record(Name("c20.passage.test"), TestDnsServer.A, Real.GetAddressBytes()),
                    ],
                    "a cname to localhost without its address" => [Record(QuestionName, TestDnsServer.Cname, Name("localhost"))],
                    "an A of 3 bytes" => [Record(QuestionName, TestDnsServer.A, [127, 0, 1])],
                    "an A of 16 bytes" => [Record(QuestionName, TestDnsServer.A, IPAddress.IPv6Loopback.GetAddressBytes())],
                    "an AAAA of 4 bytes" => [Record(QuestionName, TestDnsServer.Aaaa, [127, 0, 0, 1])],
                    "an address of another class" => [TestDnsServer.RawRecord(QuestionName, TestDnsServer.A, 60, [127, 0, 0, 1], @class: 3)],
                    _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
                };
                return [TestDnsServer.RawReply(query, 0, records)];
            },
        };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Null(answer.Error);
        Assert.Equal(expected, answer.Addresses.Select(a => a.ToString()));
    }

    /// <summary>An SOA record owned by <paramref name="owner"/> whose negative TTL is <paramref name="ttl"/> (its TTL and MINIMUM alike).</summary>
    private static byte[] Soa(string owner, uint ttl) => TestDnsServer.RawRecord(
        TestDnsServer.WireName(owner), TestDnsServer.Soa, ttl,
        [.. TestDnsServer.WireName("ns.passage.test"), .. TestDnsServer.WireName("hostmaster.passage.test"), .. new byte[16], (byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl]);

    public static TheoryData<string, int?> SoaOwners() => new()
    {
        // The SOA that says how long x.passage.test's absence may be kept is its zone's: the name or a parent of it.
        { "passage.test", 60 },
        { "x.passage.test", 60 },
        { "PASSAGE.Test", 60 },
        { "test", 60 },
        { "", 60 }, // the root
        { "other.test", null },
        { "assage.test", null }, // a suffix, but not on a label boundary
        { "y.x.passage.test", null }, // under the name, not above it
        { "passage.test, then other.test", 60 }, // the last one no longer wins
        { "other.test, then passage.test", 60 },
        { "passage.test, then test", 30 }, // of two that fit, the shorter
        { "through a cname: its end's zone", 60 },
        { "through a cname: the question's zone", null },
    };

    [Theory]
    [MemberData(nameof(SoaOwners))]
    public async Task Only_an_soa_of_the_names_zone_says_how_long_its_absence_is_kept(string kind, int? seconds)
    {
        var name = kind.StartsWith("through", StringComparison.Ordinal) ? "alias.passage.test" : "x.passage.test";
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                byte[][] chain = name == "x.passage.test" ? [] : [Record(QuestionName, TestDnsServer.Cname, TestDnsServer.WireName("x.other.test"))];
                byte[][] authority = kind switch
                {
                    "passage.test, then other.test" => [Soa("passage.test", 60), Soa("other.test", 3600)],
                    "other.test, then passage.test" => [Soa("other.test", 3600), Soa("passage.test", 60)],
                    "passage.test, then test" => [Soa("passage.test", 60), Soa("test", 30)],
                    "through a cname: its end's zone" => [Soa("other.test", 60)],
                    "through a cname: the question's zone" => [Soa("passage.test", 60)],
                    _ => [Soa(kind, 60)],
                };
                return [TestDnsServer.RawReply(query, 3, chain, authority)];
            },
        };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync(name, CancellationToken.None).WaitAsync(Timeouts.Default);

        // Without an SOA that fits, the absence has no TTL and is not kept (RFC 2308 §5).
        Assert.Equal(SocketError.HostNotFound, answer.Error);
        Assert.Equal(TimeSpan.FromSeconds(seconds ?? 0), answer.Ttl);
    }

    [Theory]
    [InlineData(0x8000_0000u, 0)]
    [InlineData(0xFFFF_FFFFu, 0)]
    [InlineData(0u, 0)]
    [InlineData(0x7FFF_FFFFu, 0x7FFF_FFFF)]
    public async Task A_ttl_with_its_top_bit_set_counts_as_zero_and_the_largest_other_stands(uint ttl, int seconds)
    {
        await using var dns = new TestDnsServer
        {
            RawUdp = query => [TestDnsServer.RawReply(query, 0, [TestDnsServer.RawRecord(QuestionName, Type(query), ttl, Type(query) == TestDnsServer.A ? Real.GetAddressBytes() : [])])],
        };

        var answer = await Resolver(Conf(dns.EndPoint) with { NoAaaa = true }).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(seconds), answer.Ttl);
    }

    [Fact]
    public async Task A_question_answered_in_other_letter_case_is_answered()
    {
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                byte[] reply = Good(query);
                for (var i = 12; i < TestDnsServer.QuestionEnd(query) - 4; i++)
                {
                    reply[i] = (byte)char.ToUpperInvariant((char)reply[i]);
                }
                return [reply];
            },
        };

        var answer = await Resolver(Conf(dns.EndPoint)).LookupAsync("x.Passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
    }

    [Fact]
    public async Task Lookups_that_time_out_or_are_cancelled_leave_no_socket_open()
    {
        await using var dns = new TestDnsServer { RawUdp = _ => [] };
        var resolver = Resolver(Conf(dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(100) });
        // Counted by what they are connected to: other tests open and close sockets in this process meanwhile.
        Assert.Equal(0, UdpSocketsConnectedTo(dns.EndPoint));

        await Task.WhenAll(Enumerable.Range(0, 20).Select(i => resolver.LookupAsync($"n{i}.passage.test", CancellationToken.None)));
        using var cancel = new CancellationTokenSource();
        var cancelled = Enumerable.Range(0, 20).Select(i => resolver.LookupAsync($"m{i}.passage.test", cancel.Token)).ToArray();
        await Timeouts.WaitUntilAsync(() => dns.Questions.Count >= 80);
        Assert.NotEqual(0, UdpSocketsConnectedTo(dns.EndPoint)); // the count sees the lookups under way
        cancel.Cancel();
        foreach (var lookup in cancelled)
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => lookup);
        }

        Assert.Equal(0, UdpSocketsConnectedTo(dns.EndPoint));
    }

    /// <summary>UDP sockets of this machine whose remote address is <paramref name="server"/> (an IPv4 one), from /proc/net/udp.</summary>
    private static int UdpSocketsConnectedTo(IPEndPoint server)
    {
        var bytes = server.Address.GetAddressBytes();
        // The kernel prints the address as one 32-bit number in host (little-endian) order, the port in big-endian hex.
        var remote = $"{bytes[3]:X2}{bytes[2]:X2}{bytes[1]:X2}{bytes[0]:X2}:{server.Port:X4}";
        return File.ReadLines("/proc/net/udp").Skip(1).Count(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2] == remote);
    }
}
