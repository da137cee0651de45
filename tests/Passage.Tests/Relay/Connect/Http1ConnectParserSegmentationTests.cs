using System.Buffers;
using Passage.Relay.Connect;
using Passage.Tests.Relay.Passthrough;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// The verdict is a function of the bytes, not of how they arrived: every prefix of a valid head is incomplete,
/// and every way of cutting it into segments gives the same result as one segment.
/// </summary>
public sealed class Http1ConnectParserSegmentationTests
{
    public static TheoryData<string> HandWritten => new(
        Heads.Minimal,
        "CONNECT [2001:db8::1]:8443 HTTP/1.0\r\n\r\n",
        "\r\nCONNECT a.test:1 HTTP/1.1\nProxy-Authorization: Bearer t\nhost:A.TEST\nX: \t y\t\n\n",
        "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic YTpi\r\nContent-Length: 0\r\nX-Latin1: \u00e9\r\n\r\n");

    public static TheoryData<HeadSource> Sources => ConnectHeadCapture.Sources;

    [Theory]
    [MemberData(nameof(HandWritten))]
    public void Hand_written_heads(string head) => AssertSegmentationIndependent(Heads.Bytes(head));

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Real_heads(HeadSource source) => AssertSegmentationIndependent((await ConnectHeadCapture.GetAsync(source)).Bytes);

    [Fact]
    public void Refusals_do_not_depend_on_segmentation_either()
    {
        string[] heads =
        [
            "GET / HTTP/1.1\r\n\r\n",
            "CONNECT a.test:443 HTTP/2.0\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nX: 1\r\n folded\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nHost : a\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        ];
        foreach (var text in heads)
        {
            var bytes = Heads.Bytes(text);
            var whole = Heads.Parse(bytes);
            Assert.Equal(Http1ParseStatus.Error, whole.Status);
            for (int cut = 0; cut <= bytes.Length; cut++)
            {
                AssertSame(whole, Parse(TestSequences.Split(bytes, cut)), $"{text} cut at {cut}");
            }

            AssertSame(whole, Parse(TestSequences.BytePerSegment(bytes)), $"{text} byte per segment");
        }
    }

    [Fact]
    public void A_head_arriving_a_byte_at_a_time_is_judged_as_a_whole_one_at_every_length()
    {
        string[] heads =
        [
            Heads.Minimal,
            // LF and CRLF line ends mixed, empty lines before the request line, a long value.
            "\n\r\nCONNECT a.test:1 HTTP/1.1\nHost: a\r\nX: " + new string('v', 3000) + "\n\r\n",
            "CONNECT a.test:443 HTTP/1.0\r\nProxy-Authorization: Basic YTpi\r\nContent-Length: 0\r\n\n",
            // Refusals found on a line still arriving, and on a complete one.
            "CONNECT a.test:443 HTTP/1.1\r\nHost: a\rX: 1\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nHo st: a\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nX: a\u0001b\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\n folded\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nX:1\r\n\r\r\n",
            "CONN\u00e9CT a.test:443 HTTP/1.1\r\n\r\n",
            "\rCONNECT a.test:443 HTTP/1.1\r\n\r\n",
            " CONNECT a.test:443 HTTP/1.1\r\n\r\n",
            "CONNECT a.test:443\r HTTP/1.1\r\n\r\n",
            "CONNECT a.test:443 HTTP/1.1\r\nX-" + new string('n', 3000) + "\u007f: 1\r\n\r\n",
            "GET / HTTP/1.1\r\n\r\n",
        ];
        foreach (var text in heads)
        {
            var bytes = Heads.Bytes(text);
            var whole = Heads.Parse(bytes);
            Assert.NotEqual(Http1ParseStatus.Incomplete, whole.Status);
            // One byte per read, then uneven reads that cut CRLF pairs and the final empty line in two. (A refusal found
            // on a line still arriving may name the rule and the bytes looked at differently from one found on the whole line.)
            foreach (var steps in new[] { new[] { 1 }, [2, 3, 1, 7] })
            {
                var resumed = Heads.ParseResumed(bytes, Http1ParseLimits.Default, steps);
                Assert.True(
                    whole.Status == resumed.Status && whole.Refusal == resumed.Refusal && Equals(whole.Request, resumed.Request)
                    && (whole.Status != Http1ParseStatus.Complete || whole.HeadLength == resumed.HeadLength),
                    $"{text} in steps of {string.Join(",", steps)}: whole {whole}, resumed {resumed}");
            }
        }
    }

    [Fact]
    public void A_head_trickled_past_the_limit_is_refused_as_a_whole_one_is()
    {
        var bytes = Heads.Bytes("CONNECT a.test:443 HTTP/1.1\r\nX: " + new string('v', 600) + "\r\n\r\n");
        var limits = new Http1ParseLimits { MaxHeadBytes = 512 };
        var whole = Heads.Parse(bytes, limits);
        Assert.Equal(Passage.Relay.RefusalReason.HeadTooLarge, whole.Refusal);
        AssertSame(whole, Heads.ParseResumed(bytes, limits, 1), "byte by byte");
    }

    private static void AssertSegmentationIndependent(byte[] head)
    {
        var whole = Heads.Parse(head);
        Assert.Equal(Http1ParseStatus.Complete, whole.Status);
        Assert.Equal(head.Length, whole.HeadLength);

        // Every proper prefix is a head still arriving, in one segment and split at every point.
        for (int length = 0; length < head.Length; length++)
        {
            var prefix = head[..length];
            var result = Heads.Parse(prefix);
            Assert.True(result.Status == Http1ParseStatus.Incomplete, $"prefix of {length} bytes: {result}");
            Assert.InRange(result.HeadLength, 0, length);
            if (length > 1)
            {
                Assert.Equal(Http1ParseStatus.Incomplete, Parse(TestSequences.Split(prefix, length / 2)).Status);
            }
        }

        // With bytes pipelined behind it, cut at every boundary into two and three segments, and byte by byte.
        var buffered = head.Concat(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x05 }).ToArray();
        for (int cut = 0; cut <= buffered.Length; cut++)
        {
            AssertSame(whole, Parse(TestSequences.Split(buffered, cut)), $"cut at {cut}");
            AssertSame(whole, Parse(TestSequences.Split(buffered, cut / 2, cut)), $"cut at {cut / 2} and {cut}");
        }

        AssertSame(whole, Parse(TestSequences.BytePerSegment(buffered)), "byte per segment");
        AssertSame(whole, Heads.ParseResumed(buffered, Http1ParseLimits.Default, 1), "resumed byte by byte");
        AssertSame(whole, Parse(TestSequences.FromChunks([], head, [], [0x16], [])), "empty segments");
    }

    private static Http1ParseResult Parse(ReadOnlySequence<byte> sequence) => Http1ConnectParser.Parse(sequence, Http1ParseLimits.Default);

    private static void AssertSame(Http1ParseResult expected, Http1ParseResult actual, string context)
    {
        Assert.True(
            expected.Status == actual.Status && expected.HeadLength == actual.HeadLength && expected.Refusal == actual.Refusal
            && expected.Detail == actual.Detail && Equals(expected.Request, actual.Request),
            $"{context}: expected {expected}, got {actual}");
    }
}
