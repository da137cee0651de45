using System.Buffers;
using System.Net;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Passthrough;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// Bounded random mutation with fixed seeds: the parser never throws, always returns, gives the same verdict
/// however the bytes are segmented, and what it calls complete really is a valid CONNECT head.
/// </summary>
public sealed class Http1ConnectParserFuzzTests
{
    private const int Seed = 20_251_123;
    private const int Mutations = 20_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // Bytes that matter to the grammar, so that mutations hit the interesting branches often.
    private static readonly byte[] Interesting = Heads.Bytes(" \t\r\n:[]@/%0123456789\u0000\u007f\u00ff.-_");

    private static readonly RefusalReason[] ParserRefusals =
        [RefusalReason.MalformedRequest, RefusalReason.MethodNotAllowed, RefusalReason.UnsupportedVersion, RefusalReason.HeadTooLarge];

    [Fact]
    public async Task Mutated_heads_never_throw_and_do_not_depend_on_segmentation()
    {
        var corpus = (await ConnectHeadCapture.GetAllAsync()).Select(h => h.Bytes).ToList();
        corpus.Add(Heads.Bytes(Heads.Minimal));
        corpus.Add(Heads.Bytes("CONNECT [2001:db8::1]:8443 HTTP/1.0\nProxy-Authorization: Bearer x\nContent-Length: 0\n\n"));
        corpus.Add(Heads.Bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));

        await Task.Run(() => Fuzz(corpus)).WaitAsync(Bound);
    }

    [Fact]
    public async Task Random_bytes_never_throw()
    {
        await Task.Run(() =>
        {
            var random = new Random(Seed);
            for (int i = 0; i < Mutations; i++)
            {
                var bytes = new byte[random.Next(0, 300)];
                random.NextBytes(bytes);

                // Half of the inputs start with a plausible request line so the field code runs too.
                if (i % 2 == 0)
                {
                    bytes = [.. Heads.Bytes("CONNECT a.test:443 HTTP/1.1\r\n"), .. bytes];
                }

                var limits = new Http1ParseLimits { MaxHeadBytes = random.Next(1, 400), MaxHeaderCount = random.Next(0, 4) };
                var result = ParseChecked(bytes, limits, $"random {i}");
                Assert.True(result.Status != Http1ParseStatus.Complete || result.HeadLength <= limits.MaxHeadBytes, $"random {i}: {result}");
            }
        }).WaitAsync(Bound);
    }

    private static void Fuzz(List<byte[]> corpus)
    {
        var random = new Random(Seed);
        var seen = new HashSet<string>();
        for (int i = 0; i < Mutations; i++)
        {
            var original = corpus[random.Next(corpus.Count)];
            var mutated = ByteMutations.Mutate(original, random, Interesting);
            var limits = random.Next(4) == 0
                ? new Http1ParseLimits { MaxHeadBytes = random.Next(1, 200), MaxHeaderCount = random.Next(0, 5) }
                : Http1ParseLimits.Default;
            string context = $"seed {Seed}, mutation {i}, {mutated.Length} bytes, {limits}";

            var whole = ParseChecked(mutated, limits, context);
            seen.Add(whole.Status == Http1ParseStatus.Error ? whole.Refusal.ToString()! : whole.Status.ToString());

            // The verdict is a function of the bytes, not of how they arrived.
            var cuts = Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(0, mutated.Length + 1)).Order().ToArray();
            var split = Http1ConnectParser.Parse(TestSequences.Split(mutated, cuts), limits);
            Assert.True(
                whole.Status == split.Status && whole.HeadLength == split.HeadLength && whole.Refusal == split.Refusal
                && whole.Detail == split.Detail && Equals(whole.Request, split.Request),
                $"{context}: whole {whole}, split {split}");

            // A parse that resumes as the bytes arrive says at every length what a parse from scratch says.
            Heads.ParseResumed(mutated, limits, random.Next(1, 4), random.Next(1, 4), 1);

            switch (whole.Status)
            {
                case Http1ParseStatus.Complete:
                    CheckComplete(mutated, limits, whole, context);
                    break;
                case Http1ParseStatus.Error:
                    Assert.Contains(whole.Refusal!.Value, ParserRefusals);

                    // Details are constants of the parser, never built from what the client sent.
                    Assert.True(whole.Detail is not null && string.IsInterned(whole.Detail) is not null, $"{context}: detail {whole.Detail}");
                    break;
                default:
                    Assert.InRange(mutated.Length, 0, limits.MaxHeadBytes);
                    break;
            }
        }

        // The mutations must reach every verdict, or the fuzz is not exploring.
        foreach (var verdict in new[] { "Complete", "Incomplete" }.Concat(ParserRefusals.Select(r => r.ToString())))
        {
            Assert.Contains(verdict, seen);
        }
    }

    private static void CheckComplete(byte[] mutated, Http1ParseLimits limits, Http1ParseResult whole, string context)
    {
        var request = whole.Request!;
        Assert.InRange(whole.HeadLength, 1, Math.Min(mutated.Length, limits.MaxHeadBytes));
        Assert.Equal("CONNECT", request.Method);
        Assert.InRange(request.Port, 1, 65535);
        Assert.True(request.Version == HttpVersion.Version11 || request.Version == HttpVersion.Version10, context);
        Assert.Matches("^([A-Za-z0-9._-]{1,254}|[0-9A-Fa-f:.]{2,45})$", request.Host);
        Assert.InRange(request.HeaderCount, 0, limits.MaxHeaderCount);

        // Exactly the head is enough, one byte fewer is not.
        int length = (int)whole.HeadLength;
        var exact = ParseChecked(mutated[..length], limits, context);
        Assert.Equal(Http1ParseStatus.Complete, exact.Status);
        Assert.Equal(request, exact.Request);
        Assert.Equal(Http1ParseStatus.Incomplete, ParseChecked(mutated[..(length - 1)], limits, context).Status);
    }

    private static Http1ParseResult ParseChecked(byte[] bytes, Http1ParseLimits limits, string context)
    {
        try
        {
            var result = Http1ConnectParser.Parse(new ReadOnlySequence<byte>(bytes), limits);
            Assert.True(Enum.IsDefined(result.Status), context);
            Assert.Equal(result.Status == Http1ParseStatus.Complete, result.Request is not null);
            Assert.Equal(result.Status == Http1ParseStatus.Error, result.Refusal is not null);
            return result;
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{context}: {e}");
        }
    }
}
