using System.Buffers;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// Bounded random mutation with fixed seeds: the parser never throws, always returns, gives the same verdict
/// however the bytes are segmented, and never calls garbage a ClientHello.
/// </summary>
public sealed class ClientHelloParserFuzzTests
{
    private const int Seed = 20_251_122;
    private const int Mutations = 20_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    // A binary format: any byte may matter.
    private static readonly byte[] AnyByte = [.. Enumerable.Range(0, 256).Select(b => (byte)b)];

    [Fact]
    public async Task Mutated_real_hellos_never_throw_and_do_not_depend_on_segmentation()
    {
        var corpus = (await ClientHelloCapture.GetAllAsync()).Select(h => h.Bytes).ToList();
        corpus.Add(SyntheticHello.WithExtensions(SyntheticHello.ServerName("fuzz.example"), SyntheticHello.Alpn("h2", "http/1.1"), SyntheticHello.SupportedVersions()));
        corpus.Add(TlsRecords.Refragment(corpus[0], 1, 7, 100));
        corpus.Add(SyntheticHello.Records(SyntheticHello.Body(null)));

        await Task.Run(() => Fuzz(corpus)).WaitAsync(Bound);
    }

    [Fact]
    public async Task Random_garbage_is_never_a_complete_hello()
    {
        await Task.Run(() =>
        {
            var random = new Random(Seed);
            for (int i = 0; i < Mutations; i++)
            {
                var bytes = new byte[random.Next(0, 600)];
                random.NextBytes(bytes);

                // Half of the inputs get a plausible record and handshake header so the deeper code runs too.
                if (i % 2 == 0 && bytes.Length >= 9)
                {
                    bytes[0] = 22;
                    bytes[1] = 3;
                    bytes[2] = (byte)random.Next(1, 5);
                    bytes[5] = 1;
                    bytes[6] = 0;
                }

                var result = ParseChecked(bytes, ClientHelloParser.DefaultMaxHandshakeBytes, $"garbage {i}");
                Assert.True(result.Status is ClientHelloStatus.NotTls or ClientHelloStatus.Malformed or ClientHelloStatus.Incomplete or ClientHelloStatus.TooLarge, $"garbage {i}: {result}");
            }
        }).WaitAsync(Bound);
    }

    private static void Fuzz(List<byte[]> corpus)
    {
        var random = new Random(Seed);
        var seen = new Dictionary<ClientHelloStatus, int>();
        for (int i = 0; i < Mutations; i++)
        {
            var original = corpus[random.Next(corpus.Count)];
            var mutated = ByteMutations.Mutate(original, random, AnyByte);
            int max = random.Next(4) == 0 ? random.Next(0, 2000) : ClientHelloParser.DefaultMaxHandshakeBytes;
            string context = $"seed {Seed}, mutation {i}, {mutated.Length} bytes, bound {max}";

            var whole = ParseChecked(mutated, max, context);
            seen[whole.Status] = seen.GetValueOrDefault(whole.Status) + 1;

            // The verdict is a function of the bytes, not of how they arrived.
            var cuts = Enumerable.Range(0, random.Next(1, 5)).Select(_ => random.Next(0, mutated.Length + 1)).Order().ToArray();
            var split = ClientHelloParser.Parse(TestSequences.Split(mutated, cuts), max);
            Assert.True(whole.Status == split.Status && whole.ServerName == split.ServerName && whole.BytesExamined == split.BytesExamined, $"{context}: whole {whole}, split {split}");

            if (whole.Status == ClientHelloStatus.Complete)
            {
                Assert.InRange(whole.BytesExamined, 1, mutated.Length);
                if (whole.ServerName is { } name)
                {
                    Assert.Matches("^[a-z0-9_-]{1,63}(\\.[a-z0-9_-]{1,63})*$", name);
                }

                // Exactly the records that held it are enough, one byte fewer is not.
                int examined = (int)whole.BytesExamined;
                Assert.Equal(ClientHelloStatus.Complete, ParseChecked(mutated[..examined], max, context).Status);
                Assert.Equal(ClientHelloStatus.Incomplete, ParseChecked(mutated[..(examined - 1)], max, context).Status);
            }
        }

        // The mutations must reach every verdict, or the fuzz is not exploring.
        foreach (var status in new[] { ClientHelloStatus.Complete, ClientHelloStatus.Malformed, ClientHelloStatus.Incomplete, ClientHelloStatus.TooLarge })
        {
            Assert.True(seen.GetValueOrDefault(status) > 0, $"no {status} among {Mutations} mutations");
        }
    }

    private static ClientHelloResult ParseChecked(byte[] bytes, int max, string context)
    {
        try
        {
            var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(bytes), max);
            Assert.True(Enum.IsDefined(result.Status), context);
            return result;
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{context}: {e}");
        }
    }
}
