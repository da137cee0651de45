using System.Text;
using Passage.Client.HttpProxy;
using Passage.Tunnel;

namespace Passage.Tests.Http;

/// <summary>
/// Chunked framing (RFC 9112 §7.1) is read in two places: the HTTP proxy's <see cref="FramedBody"/>, which checks it as
/// the bytes pass, one piece at a time, and the tunnel's <see cref="ChunkedReadStream"/>, which reads it line by line.
/// Two readers of one framing that disagree on where a body ends are how requests get smuggled, so here both are fed
/// the same generated and mutated bodies, cut into random pieces, with fixed seeds: they must agree on the data and on
/// what is malformed, a body must not depend on how its bytes were cut, nothing but
/// <see cref="InvalidDataException"/> may come out of bad framing, and what follows a body's end is never part of it.
/// </summary>
public sealed class ChunkedFramingPropertyTests
{
    private const int Seed = 20_261_206;
    private const int Rounds = 3_000;

    // Trailer fields: ones any trailer section may carry, and ones RFC 9110 §6.5.1 bars (the proxy drops those).
    private static readonly string[] s_allowedTrailers = ["X-Checksum: abc", "Server-Timing: db;dur=53", "x-t:  v ", "Digest:sha-256=x"];
    private static readonly string[] s_barredTrailers = ["Content-Length: 5", "Set-Cookie: a=b", "Transfer-Encoding: chunked", "Host: elsewhere"];

    [Fact]
    public async Task Well_formed_bodies_pass_whole_whatever_the_pieces_and_nothing_after_their_end()
    {
        var random = new Random(Seed);
        for (var round = 0; round < Rounds; round++)
        {
            var body = Generate(random);
            var trailing = RandomBytes(random, random.Next(0, 40));
            var wire = Concat(body.Wire, trailing);

            var passed = Feed(wire, Cuts(random, wire.Length), unchunk: false);
            Assert.True(passed.Fault is null, $"round {round}: {passed.Fault?.Message}\n{Show(body.Wire)}");
            Assert.True(passed.Done, $"round {round}: not done\n{Show(body.Wire)}");
            Assert.Equal(Show(body.Forwarded), Show(passed.Output));

            var unchunked = Feed(wire, Cuts(random, wire.Length), unchunk: true);
            Assert.True(unchunked.Fault is null && unchunked.Done, $"round {round}: {unchunked.Fault?.Message}\n{Show(body.Wire)}");
            Assert.Equal(Show(body.Data), Show(unchunked.Output));

            var read = await ReadWithTunnelAsync(wire, random.Next(1, 64));
            Assert.True(read.Fault is null, $"round {round}: {read.Fault?.Message}\n{Show(body.Wire)}");
            Assert.Equal(Show(body.Data), Show(read.Output));
        }
    }

    [Fact]
    public async Task Mutated_bodies_get_one_verdict_from_both_readers_and_from_any_pieces()
    {
        var random = new Random(Seed + 1);
        var seen = new Dictionary<string, int>();
        for (var round = 0; round < Rounds; round++)
        {
            var wire = Mutate(random, Generate(random).Wire);

            var first = Feed(wire, Cuts(random, wire.Length), unchunk: true);
            var second = Feed(wire, Cuts(random, wire.Length), unchunk: true);
            Assert.True(first.Fault is null or InvalidDataException, $"round {round}: {first.Fault}\n{Show(wire)}");
            Assert.Equal(Verdict(first), Verdict(second));
            // What passed before a fault depends on where the piece holding it began; the rest does not.
            var (shorter, longer) = first.Output.Length <= second.Output.Length ? (first.Output, second.Output) : (second.Output, first.Output);
            Assert.Equal(Show(longer[..(first.Fault is null ? longer.Length : shorter.Length)]), Show(shorter));

            var passed = Feed(wire, Cuts(random, wire.Length), unchunk: false);
            Assert.True(passed.Fault is null or InvalidDataException, $"round {round}: {passed.Fault}\n{Show(wire)}");
            Assert.Equal(Verdict(first), Verdict(passed));

            // The tunnel's reader ends a cut-off body with an IOException where the proxy's simply is not done yet; and it
            // judges a line once its LF is there, so a line cut off by the end of the stream is incomplete to it even where
            // the proxy, which checks each byte as it passes, has already found a bare CR in it.
            var read = await ReadWithTunnelAsync(wire, random.Next(1, 64));
            var tunnelVerdict = read.Fault switch
            {
                null => "done",
                InvalidDataException { Message: "the stream ended inside a line" } when first.Fault?.Message == "a bare CR in the chunked framing" => "malformed",
                InvalidDataException { Message: "the stream ended inside a line" } => "incomplete",
                InvalidDataException => "malformed",
                IOException => "incomplete",
                var other => throw new Xunit.Sdk.XunitException($"round {round}: {other}\n{Show(wire)}"),
            };
            Assert.True(Verdict(first) == tunnelVerdict, $"round {round}: proxy {Verdict(first)} ({first.Fault?.Message}), tunnel {tunnelVerdict} ({read.Fault?.Message})\n{Show(wire)}");
            if (tunnelVerdict == "done")
            {
                Assert.Equal(Show(first.Output), Show(read.Output));
            }
            seen[tunnelVerdict] = seen.GetValueOrDefault(tunnelVerdict) + 1;
        }
        // The mutations reach every verdict, so the agreement above is not only on easy cases.
        Assert.All(["done", "malformed", "incomplete"], v => Assert.True(seen.GetValueOrDefault(v) > Rounds / 50, $"{v}: {seen.GetValueOrDefault(v)}"));
    }

    /// <summary>A generated body: its bytes on the wire, what the proxy passes on of them, and its data.</summary>
    private sealed record Body(byte[] Wire, byte[] Forwarded, byte[] Data);

    private static Body Generate(Random random)
    {
        var wire = new List<byte>();
        var forwarded = new List<byte>();
        var data = new List<byte>();
        void Both(string text)
        {
            wire.AddRange(Encoding.Latin1.GetBytes(text));
            forwarded.AddRange(Encoding.Latin1.GetBytes(text));
        }

        for (var chunks = random.Next(0, 5); chunks > 0; chunks--)
        {
            var size = random.Next(1, 300);
            Both(SizeLine(random, size) + "\r\n");
            var bytes = RandomBytes(random, size);
            wire.AddRange(bytes);
            forwarded.AddRange(bytes);
            data.AddRange(bytes);
            Both("\r\n");
        }
        Both(SizeLine(random, 0) + "\r\n");
        for (var fields = random.Next(0, 4); fields > 0; fields--)
        {
            var barred = random.Next(3) == 0;
            var line = barred ? s_barredTrailers[random.Next(s_barredTrailers.Length)] : s_allowedTrailers[random.Next(s_allowedTrailers.Length)];
            wire.AddRange(Encoding.Latin1.GetBytes(line + "\r\n"));
            if (!barred)
            {
                forwarded.AddRange(Encoding.Latin1.GetBytes(line + "\r\n"));
            }
        }
        Both("\r\n");
        return new Body([.. wire], [.. forwarded], [.. data]);
    }

    /// <summary>A chunk-size line as senders write it: either case, leading zeros, extensions with or without whitespace.</summary>
    private static string SizeLine(Random random, int size)
    {
        var hex = size.ToString(random.Next(2) == 0 ? "x" : "X", System.Globalization.CultureInfo.InvariantCulture);
        hex = new string('0', random.Next(0, 15 - hex.Length + 1)) + hex;
        return random.Next(4) switch
        {
            0 => hex + ";name=\"v\"",
            1 => hex + " ; x",
            2 => hex + ";a;b=c",
            _ => hex,
        };
    }

    /// <summary>One to three edits of the framing: a byte changed (to a framing byte often), one inserted, one removed.</summary>
    private static byte[] Mutate(Random random, byte[] wire)
    {
        ReadOnlySpan<byte> framingBytes = "\r\n0123456789abcdefABCDEFxX;: \t=\"-"u8;
        var bytes = new List<byte>(wire);
        for (var edits = random.Next(1, 4); edits > 0 && bytes.Count > 0; edits--)
        {
            var at = random.Next(bytes.Count);
            var value = random.Next(3) == 0 ? (byte)random.Next(256) : framingBytes[random.Next(framingBytes.Length)];
            switch (random.Next(3))
            {
                case 0: bytes[at] = value; break;
                case 1: bytes.Insert(at, value); break;
                default: bytes.RemoveAt(at); break;
            }
        }
        return [.. bytes];
    }

    /// <summary>What a reader made of the bytes: what it passed on, whether the body ended, what it threw.</summary>
    private sealed record Outcome(byte[] Output, bool Done, Exception? Fault);

    private static string Verdict(Outcome outcome) => outcome.Fault is not null ? "malformed" : outcome.Done ? "done" : "incomplete";

    /// <summary>Feeds <paramref name="wire"/> to a <see cref="FramedBody"/> piece by piece, as RequestBodyConnection reads it.</summary>
    private static Outcome Feed(byte[] wire, IReadOnlyList<int> cuts, bool unchunk)
    {
        var framed = new FramedBody(BodyFraming.Chunked, 0, unchunk: unchunk);
        var output = new List<byte>();
        var small = new byte[5];
        var at = 0;
        try
        {
            foreach (var cut in cuts.Append(wire.Length))
            {
                // Held trailer lines first; past the body's end nothing more is taken.
                while (framed.HasHeld)
                {
                    output.AddRange(small.AsSpan(0, framed.TakeHeld(small)).ToArray());
                }
                if (framed.Done)
                {
                    break;
                }
                var piece = wire[at..cut];
                at = cut;
                var kept = framed.Take(piece);
                output.AddRange(piece.AsSpan(0, kept).ToArray());
            }
            while (framed.HasHeld)
            {
                output.AddRange(small.AsSpan(0, framed.TakeHeld(small)).ToArray());
            }
        }
        catch (Exception e)
        {
            return new Outcome([.. output], framed.Done, e);
        }
        return new Outcome([.. output], framed.Done, null);
    }

    /// <summary>Reads <paramref name="wire"/> with the tunnel's <see cref="ChunkedReadStream"/>, a few bytes per read.</summary>
    private static async Task<Outcome> ReadWithTunnelAsync(byte[] wire, int readSize)
    {
        using var reader = new Http1Reader(new MemoryStream(wire));
        var chunked = new ChunkedReadStream(reader);
        var output = new List<byte>();
        var buffer = new byte[readSize];
        try
        {
            while (await chunked.ReadAsync(buffer) is var n and > 0)
            {
                output.AddRange(buffer.AsSpan(0, n).ToArray());
            }
        }
        catch (Exception e)
        {
            return new Outcome([.. output], false, e);
        }
        return new Outcome([.. output], true, null);
    }

    /// <summary>Ascending cut points in 0..length, a few of them, repeats allowed (empty pieces).</summary>
    private static List<int> Cuts(Random random, int length)
    {
        var cuts = new List<int>();
        for (var n = random.Next(0, 8); n > 0; n--)
        {
            cuts.Add(random.Next(0, length + 1));
        }
        cuts.Sort();
        return cuts;
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var bytes = new byte[count];
        random.NextBytes(bytes);
        return bytes;
    }

    private static byte[] Concat(byte[] a, byte[] b) => [.. a, .. b];

    private static string Show(byte[] bytes) => Convert.ToHexString(bytes);
}
