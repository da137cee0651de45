using System.Buffers.Binary;
using System.Net;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

/// <summary>
/// EDNS (RFC 6891) in the relay's own resolver, against DNS servers on loopback: the OPT record its queries carry,
/// answers larger than 512 bytes over UDP, servers from before EDNS, and replies whose OPT is broken or says more
/// than this resolver knows.
/// </summary>
public sealed class StubResolverEdnsTests
{
    private static readonly IPAddress Real = IPAddress.Parse("192.0.2.80");

    private static ResolverConf Conf(params IPEndPoint[] servers) =>
        new() { Servers = servers, Timeout = TimeSpan.FromSeconds(5), Attempts = 1 };

    /// <summary>The OPT record of <paramref name="query"/> as its fields, or null without one.</summary>
    private static (byte Owner, ushort Type, ushort Payload, uint Ttl, ushort Length, int End)? Opt(byte[] query)
    {
        if (BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(10)) == 0)
        {
            return null;
        }

        var at = TestDnsServer.QuestionEnd(query);
        var span = query.AsSpan(at);
        return (span[0], BinaryPrimitives.ReadUInt16BigEndian(span[1..]), BinaryPrimitives.ReadUInt16BigEndian(span[3..]),
            BinaryPrimitives.ReadUInt32BigEndian(span[5..]), BinaryPrimitives.ReadUInt16BigEndian(span[9..]), at + 11);
    }

    /// <summary>The sound reply: <see cref="Real"/> for A, nothing for AAAA; with <paramref name="authorities"/> when given.</summary>
    private static byte[] Good(byte[] query, byte[][]? authorities = null) => TestDnsServer.RawReply(
        query, 0, TestDnsServer.QuestionType(query) == TestDnsServer.A ? [TestDnsServer.RawRecord([0xC0, 12], TestDnsServer.A, 60, Real.GetAddressBytes())] : [], authorities);

    /// <summary><paramref name="reply"/> with an OPT record added to its additional section, as a server that speaks EDNS sends it.</summary>
    private static byte[] WithOpt(byte[] reply, uint ttl = 0, byte[]? data = null, byte[]? owner = null)
    {
        byte[] withOpt = [.. reply, .. TestDnsServer.RawRecord(owner ?? [0], 41, ttl, data ?? [], @class: DnsWire.EdnsUdpPayload)];
        BinaryPrimitives.WriteUInt16BigEndian(withOpt.AsSpan(10), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(withOpt.AsSpan(10)) + 1));
        return withOpt;
    }

    [Fact]
    public async Task Queries_over_udp_carry_an_opt_offering_1232_bytes_with_dnssec_ok_off()
    {
        var queries = new System.Collections.Concurrent.ConcurrentQueue<byte[]>();
        await using var dns = new TestDnsServer { RawUdp = query => { queries.Enqueue(query); return [Good(query)]; } };

        var answer = await new StubResolver(Conf(dns.EndPoint), null).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
        Assert.Equal(2, queries.Count);
        Assert.All(queries, query =>
        {
            // The root's name, type OPT, the payload size in the class, extended RCODE, version and flags (DO) zero, no options.
            var opt = Assert.NotNull(Opt(query));
            Assert.Equal((0, 41, 1232, 0u, 0), (opt.Owner, opt.Type, opt.Payload, opt.Ttl, opt.Length));
            Assert.Equal(query.Length, opt.End);
            Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(6))); // no answer or authority records
            Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(8)));
        });
    }

    [Fact]
    public async Task A_reply_of_900_bytes_comes_whole_over_udp_without_a_tcp_retry()
    {
        // As a server sends it: whole when the query offers room for it, else truncated (and whole only over TCP).
        var addresses = Enumerable.Range(1, 54).Select(i => new IPAddress([192, 0, 2, (byte)i])).ToArray();
        var sizes = new System.Collections.Concurrent.ConcurrentQueue<int>();
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                if (TestDnsServer.QuestionType(query) != TestDnsServer.A)
                {
                    return [Good(query)];
                }

                var reply = WithOpt(TestDnsServer.RawReply(query, 0, [.. addresses.Select(a => TestDnsServer.RawRecord([0xC0, 12], TestDnsServer.A, 60, a.GetAddressBytes()))]));
                sizes.Enqueue(reply.Length);
                return [Opt(query) is { } opt && opt.Payload >= reply.Length ? reply : TestDnsServer.RawReply(query, 0, [], truncated: true)];
            },
        };
        dns.SetAddress("x.passage.test", 60, "192.0.2.99"); // over TCP, which must not be asked

        var answer = await new StubResolver(Conf(dns.EndPoint), null).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.InRange(Assert.Single(sizes), 900, DnsWire.EdnsUdpPayload);
        Assert.Equal(addresses.Take(DnsAnswer.MaxAddressesPerFamily), answer.Addresses);
        Assert.Equal(0, dns.Count("x.passage.test", "tcp"));
    }

    [Theory]
    [InlineData(1, true)] // format error
    [InlineData(4, true)] // not implemented
    [InlineData(1, false)] // format error, without the question: asked again without the OPT, but not so afterwards
    public async Task A_server_that_refuses_the_opt_is_asked_again_without_it_at_once_and_so_afterwards(int rcode, bool withQuestion)
    {
        // As servers from before EDNS answer a query with an OPT record (RFC 6891 §7): an error, and no OPT of their own.
        var withOpt = 0;
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                if (Opt(query) is null)
                {
                    return [Good(query)];
                }

                Interlocked.Increment(ref withOpt);
                return [withQuestion ? TestDnsServer.RawReply(query, rcode, []) : [query[0], query[1], 0x81, (byte)(0x80 | rcode), 0, 0, 0, 0, 0, 0, 0, 0]];
            },
        };
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var resolver = new StubResolver(Conf(dns.EndPoint), null, metrics);

        var first = await resolver.LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        var second = await resolver.LookupAsync("y.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], first.Addresses);
        Assert.Equal([Real], second.Addresses);
        // With the question: the first lookup's A and AAAA, the second asked without. Without it, a reply known by its
        // ID alone, each question is asked again without the OPT, and the next lookup asks with it again.
        Assert.Equal(withQuestion ? 2 : 4, withOpt);
        Assert.Equal(withQuestion ? 6 : 8, dns.Questions.Count);
        Assert.Equal(4, recorder["passage.relay.dns.queries/answered"]); // one question to one server, counted once
        Assert.Equal(0, recorder["passage.relay.dns.queries/server_failure"]);
    }

    /// <summary>
    /// A format error without the question, known by its ID alone, is as easy to forge as any failure (RFC 5452): one
    /// racing a server that speaks EDNS costs the question a query without the OPT, and does not turn EDNS off at that
    /// server for the lookups after it (RFC 6891 §7: the fallback is for the server's own refusal of the query).
    /// </summary>
    [Fact]
    public async Task A_forged_format_error_without_the_question_does_not_turn_edns_off_for_later_lookups()
    {
        var laterWithoutOpt = 0;
        await using var dns = new TestDnsServer
        {
            RawUdp = query =>
            {
                if (!query.AsSpan(12).StartsWith(TestDnsServer.WireName("x.passage.test")))
                {
                    Interlocked.Add(ref laterWithoutOpt, Opt(query) is null ? 1 : 0);
                    return [WithOpt(Good(query))];
                }

                // Ahead of the server's own answer, from its address and port: a header with the query's ID and FORMERR.
                return Opt(query) is null ? [Good(query)] : [[query[0], query[1], 0x81, 0x81, 0, 0, 0, 0, 0, 0, 0, 0], WithOpt(Good(query))];
            },
        };
        var resolver = new StubResolver(Conf(dns.EndPoint), null);

        var first = await resolver.LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        var later = await resolver.LookupAsync("y.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], first.Addresses);
        Assert.Equal([Real], later.Addresses);
        Assert.Equal(0, laterWithoutOpt);
    }

    /// <summary>
    /// A server that refuses the OPT and then says nothing to the question asked without it did answer: the lookup is a
    /// temporary failure, not the timeout of servers that never said anything (504 dns_timeout).
    /// </summary>
    [Fact]
    public async Task A_server_that_refuses_the_opt_then_stays_silent_has_been_heard()
    {
        await using var dns = new TestDnsServer { RawUdp = query => Opt(query) is null ? [] : [TestDnsServer.RawReply(query, 1, [])] };
        var conf = Conf(dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(500) };

        var answer = await new StubResolver(conf, null).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Empty(answer.Addresses);
        Assert.Equal(System.Net.Sockets.SocketError.TryAgain, answer.Error);
        Assert.Equal(4, dns.Questions.Count); // A and AAAA, with the OPT and then without
    }

    public static TheoryData<string, bool> BrokenOpts() => new()
    {
        // What the server meant cannot be known, or is more than this resolver knows: the next server is asked.
        { "an option past the OPT's data", true },
        { "two OPTs", true },
        { "an OPT not owned by the root", true },
        { "BADVERS", true },
        { "an unknown extended rcode", true },
        { "an extended rcode above no such name", true },
        { "a format error with an OPT", true }, // a server that speaks EDNS: not a refusal of it
        { "the OPT's length past the message", false }, // unreadable as any such reply: ignored, the server passed at its timeout
        { "an unreadable authority record before a BADVERS OPT", false }, // the OPT cannot be reached: unreadable alike
    };

    [Theory]
    [MemberData(nameof(BrokenOpts))]
    public async Task A_reply_whose_opt_is_broken_or_says_more_than_is_known_fails_that_server_and_the_next_answers(string kind, bool atOnce)
    {
        await using var bad = new TestDnsServer
        {
            RawUdp = query =>
            {
                var reply = Good(query);
                return
                [
                    kind switch
                    {
                        "an option past the OPT's data" => WithOpt(reply, data: [0, 10, 0, 8, 1, 2, 3]),
                        "two OPTs" => WithOpt(WithOpt(reply)),
                        "an OPT not owned by the root" => WithOpt(reply, owner: TestDnsServer.WireName("x")),
                        "BADVERS" => WithOpt(reply, ttl: 1u << 24),
                        "an unknown extended rcode" => WithOpt(reply, ttl: 0xFFu << 24),
                        "an extended rcode above no such name" => WithOpt(TestDnsServer.RawReply(query, 3, []), ttl: 1u << 24),
                        "a format error with an OPT" => WithOpt(TestDnsServer.RawReply(query, 1, [])),
                        "the OPT's length past the message" => WithOpt(reply, data: [0, 10, 0, 0])[..^2],
                        "an unreadable authority record before a BADVERS OPT" => WithOpt(Good(query, [TestDnsServer.RawRecord([0xC0, 0xFF], 6, 60, [])]), ttl: 1u << 24), // owned by a forward pointer
                        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
                    },
                ];
            },
        };
        await using var dns = new TestDnsServer { RawUdp = query => [Good(query)] };
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var conf = Conf(bad.EndPoint, dns.EndPoint) with { Timeout = TimeSpan.FromMilliseconds(500) };

        var answer = await new StubResolver(conf, null, metrics).LookupAsync("x.passage.test", CancellationToken.None).WaitAsync(Timeouts.Default);

        Assert.Equal([Real], answer.Addresses);
        Assert.Equal(2, bad.Questions.Count); // not asked again without the OPT
        Assert.Equal(atOnce ? 2 : 0, recorder["passage.relay.dns.queries/server_failure"]);
        Assert.Equal(atOnce ? 0 : 2, recorder["passage.relay.dns.queries/timeout"]);
    }
}
