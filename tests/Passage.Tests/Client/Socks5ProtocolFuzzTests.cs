using System.Buffers;
using System.Net;
using Passage.Client;
using Passage.Client.Socks5;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Passthrough;
using static Passage.Client.Socks5.Socks5Protocol;

namespace Passage.Tests.Client;

/// <summary>
/// Bounded random mutation with fixed seeds of the SOCKS5 messages the local proxy reads: each parser never throws,
/// consumes only what it was given, gives the same verdict however the bytes are segmented, waits for more only while
/// the bytes can still become a message, and accepts only a host the relay reads as it is.
/// </summary>
public sealed class Socks5ProtocolFuzzTests
{
    private const int Seed = 20_261_207;
    private const int Mutations = 20_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Bytes that matter to the messages: versions, commands, address types, lengths, and what a domain name may not hold.
    internal static readonly byte[] Interesting = [0, 1, 2, 3, 4, 5, 6, 15, 16, 17, 0x7f, 0x80, 0xfe, 0xff, (byte)'.', (byte)':', (byte)'[', (byte)']', (byte)'%', (byte)'/', (byte)' ', (byte)'\r', (byte)'\n', (byte)'@'];

    /// <summary>A parse's verdict and everything it gave back, comparable as a whole.</summary>
    private sealed record Verdict(ParseStatus Status, int Consumed, string Result);

    [Fact]
    public async Task Mutated_greetings_never_throw_and_do_not_depend_on_segmentation()
    {
        byte[][] corpus = [[5, 1, MethodNoAuth], [5, 2, MethodNoAuth, MethodUserPass], [5, 1, MethodUserPass], [5, 3, 1, 2, 0xff], [5, 0]];
        var seen = await FuzzAsync(corpus, ParseGreetingVerdict, (bytes, _) => bytes.Length == 0 || bytes[0] == Socks5Protocol.Version);
        Assert.Superset(new HashSet<string> { "Complete", "Incomplete", "Invalid" }, seen);
    }

    [Fact]
    public async Task Mutated_username_password_requests_never_throw_and_do_not_depend_on_segmentation()
    {
        byte[][] corpus = [[1, 5, .. "alice"u8, 7, .. "won:der"u8], [1, 0, 0], [1, 1, 0xff, 3, 0, (byte)'\n', 0x80], [1, 4, .. "user"u8, 0]];
        var seen = await FuzzAsync(corpus, ParseUserPassVerdict, (bytes, _) => bytes.Length == 0 || bytes[0] == 1);
        Assert.Superset(new HashSet<string> { "Complete", "Incomplete", "Invalid" }, seen);
    }

    [Fact]
    public async Task Mutated_connect_requests_never_throw_do_not_depend_on_segmentation_and_name_a_host_the_relay_reads()
    {
        byte[][] corpus =
        [
            Request(AddressIPv4, [127, 0, 0, 1], 80),
            Request(AddressIPv6, IPAddress.Parse("2001:db8::1").GetAddressBytes(), 443),
            Request(AddressIPv6, IPAddress.Parse("::ffff:192.0.2.1").GetAddressBytes(), 8080),
            Domain("origin.test", 443),
            Domain("xn--bcher-kva.example.", 80),
            Domain("[::1]", 1),
            Domain("192.0.2.7", 65535),
            [Socks5Protocol.Version, 2, 0, AddressIPv4, 0, 0, 0, 0, 0, 0],
            [Socks5Protocol.Version, 3, 0, AddressDomain, 1, (byte)'a', 0, 53],
        ];
        var seen = await FuzzAsync(corpus, ParseRequestVerdict, CouldStillBeARequest);
        string[] replies = [.. new[] { Reply.GeneralFailure, Reply.HostUnreachable, Reply.CommandNotSupported, Reply.AddressTypeNotSupported }.Select(r => $"Invalid {r}")];
        Assert.Superset(new HashSet<string>(["Complete", "Incomplete", .. replies]), seen);
    }

    /// <summary>
    /// Whether <paramref name="bytes"/> can still become a whole request (RFC 1928 §4), whatever follows: each field read so far
    /// is one a request may hold. The command and the host are judged once the request is whole, so that its answer comes then.
    /// </summary>
    private static bool CouldStillBeARequest(byte[] bytes, Verdict _) =>
        (bytes.Length < 1 || bytes[0] == Socks5Protocol.Version)
        && (bytes.Length < 3 || bytes[2] == 0)
        && (bytes.Length < 4 || bytes[3] is AddressIPv4 or AddressDomain or AddressIPv6);

    private static byte[] Request(byte type, byte[] address, int port) =>
        [Socks5Protocol.Version, CommandConnect, 0, type, .. address, (byte)(port >> 8), (byte)port];

    private static byte[] Domain(string name, int port) => Request(AddressDomain, [(byte)name.Length, .. System.Text.Encoding.ASCII.GetBytes(name)], port);

    private static Verdict ParseGreetingVerdict(ReadOnlySequence<byte> data, Random random)
    {
        // The method asked for is the one the proxy's configuration picks: either.
        var method = random.Next(2) == 0 ? MethodNoAuth : MethodUserPass;
        var status = ParseGreeting(data, method, out var offered, out var consumed);
        return new Verdict(status, consumed, $"method {method} offered {offered}");
    }

    private static Verdict ParseUserPassVerdict(ReadOnlySequence<byte> data, Random random)
    {
        var status = ParseUserPass(data, out var user, out var password, out var consumed);
        if (status == ParseStatus.Complete)
        {
            // The name and the password lie inside what was consumed, one after the other.
            Assert.InRange(user.Start.Value, 2, user.End.Value);
            Assert.InRange(password.Start.Value, user.End.Value + 1, password.End.Value);
            Assert.Equal(consumed, password.End.Value);
        }
        return new Verdict(status, consumed, $"user {user} password {password}");
    }

    private static Verdict ParseRequestVerdict(ReadOnlySequence<byte> data, Random random)
    {
        var status = ParseRequest(data, out var host, out var port, out var consumed, out var error);
        if (status == ParseStatus.Complete)
        {
            // What goes to the relay is what the relay reads: a name, never empty, no control character, no zone.
            Assert.NotEmpty(host);
            Assert.DoesNotContain(host, char.IsControl);
            Assert.InRange(port, 1, 65535);
            Assert.Equal(host, PassageClient.AsRelaysRead(host, port));
        }
        return new Verdict(status, consumed, status == ParseStatus.Invalid ? error.ToString() : $"{host} {port}");
    }

    /// <summary>
    /// Runs <paramref name="parse"/> over the prefixes of the corpus and over <see cref="Mutations"/> mutations of it, checks
    /// every verdict, and returns the verdicts reached (a refusal with its reply).
    /// </summary>
    private static async Task<HashSet<string>> FuzzAsync(byte[][] corpus, Func<ReadOnlySequence<byte>, Random, Verdict> parse, Func<byte[], Verdict, bool> couldStillBe)
    {
        var seen = new HashSet<string>();
        await Task.Run(() =>
        {
            // A prefix of a valid message is incomplete, never an error, and the whole of it is complete.
            foreach (var message in corpus)
            {
                for (var length = 0; length < message.Length; length++)
                {
                    Assert.Equal(ParseStatus.Incomplete, ParseChecked(message[..length], parse, new Random(Seed), couldStillBe, $"corpus prefix {length}").Status);
                }
                var whole = ParseChecked(message, parse, new Random(Seed), couldStillBe, "corpus");
                Assert.True(whole.Status == ParseStatus.Complete || whole.Result.Contains("CommandNotSupported", StringComparison.Ordinal), $"corpus: {whole}");
            }

            var random = new Random(Seed);
            for (var i = 0; i < Mutations; i++)
            {
                var mutated = ByteMutations.Mutate(corpus[random.Next(corpus.Length)], random, Interesting);
                var parserSeed = random.Next();
                var context = $"seed {Seed}, mutation {i}: {Convert.ToHexString(mutated)}";
                var whole = ParseChecked(mutated, parse, new Random(parserSeed), couldStillBe, context);
                seen.Add(whole.Status == ParseStatus.Invalid && whole.Result.Length > 0 && !whole.Result.Contains(' ') ? $"Invalid {whole.Result}" : whole.Status.ToString());

                // The verdict is a function of the bytes, not of how they arrived: a byte at a time, or cut anywhere.
                var bytewise = parse(TestSequences.FromChunks(mutated.Select(b => (ReadOnlyMemory<byte>)new[] { b })), new Random(parserSeed));
                Assert.True(whole == bytewise, $"{context}: whole {whole}, a byte at a time {bytewise}");
                var cuts = Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(0, mutated.Length + 1)).Order().ToArray();
                var split = parse(TestSequences.Split(mutated, cuts), new Random(parserSeed));
                Assert.True(whole == split, $"{context}: whole {whole}, cut at {string.Join(',', cuts)} {split}");

                if (whole.Status == ParseStatus.Complete)
                {
                    // Exactly what was consumed is the message: with nothing after it, the same verdict; every prefix of it incomplete.
                    var exact = ParseChecked(mutated[..whole.Consumed], parse, new Random(parserSeed), couldStillBe, context);
                    Assert.True(whole == exact, $"{context}: whole {whole}, its consumed bytes alone {exact}");
                    for (var length = 0; length < whole.Consumed; length++)
                    {
                        var prefix = ParseChecked(mutated[..length], parse, new Random(parserSeed), couldStillBe, $"{context}, prefix {length}");
                        Assert.True(prefix.Status == ParseStatus.Incomplete, $"{context}: prefix {length} {prefix}");
                    }
                }
            }
        }).WaitAsync(Bound);
        return seen;
    }

    /// <summary>One parse of <paramref name="bytes"/> in one segment, its verdict checked: no exception, what it consumed within the input.</summary>
    private static Verdict ParseChecked(byte[] bytes, Func<ReadOnlySequence<byte>, Random, Verdict> parse, Random random, Func<byte[], Verdict, bool> couldStillBe, string context)
    {
        Verdict verdict;
        try
        {
            verdict = parse(new ReadOnlySequence<byte>(bytes), random);
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{context}: {e}");
        }
        Assert.True(Enum.IsDefined(verdict.Status), context);
        Assert.InRange(verdict.Consumed, 0, bytes.Length);
        if (verdict.Status == ParseStatus.Complete)
        {
            Assert.True(verdict.Consumed > 0, $"{context}: {verdict}");
        }
        if (verdict.Status == ParseStatus.Incomplete)
        {
            // Waiting for more is right only while more could make a message of it; otherwise the answer is due now.
            Assert.True(verdict.Consumed == 0 && couldStillBe(bytes, verdict), $"{context}: {verdict} though no more bytes can make a message of it");
        }
        return verdict;
    }
}
