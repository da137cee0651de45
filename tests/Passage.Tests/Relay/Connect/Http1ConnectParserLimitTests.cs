using System.Buffers;
using System.Text;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Tests.Relay.Passthrough;

namespace Passage.Tests.Relay.Connect;

/// <summary>The head-size and header-count limits: 431 (RFC 6585 §5) as soon as a limit is passed.</summary>
public sealed class Http1ConnectParserLimitTests
{
    [Fact]
    public void Defaults_are_documented_values()
    {
        Assert.Equal(8 * 1024, Http1ParseLimits.Default.MaxHeadBytes);
        Assert.Equal(64, Http1ParseLimits.Default.MaxHeaderCount);
    }

    [Fact]
    public void A_head_of_exactly_the_limit_is_complete_and_one_byte_more_is_too_large()
    {
        int max = Http1ParseLimits.Default.MaxHeadBytes;
        var exact = HeadOfLength(max);
        Assert.Equal(max, exact.Length);

        var complete = Heads.Parse(exact);
        Assert.Equal(Http1ParseStatus.Complete, complete.Status);
        Assert.Equal(max, complete.HeadLength);

        var tooLong = HeadOfLength(max + 1);
        var refused = Heads.Parse(tooLong);
        Assert.Equal(Http1ParseStatus.Error, refused.Status);
        Assert.Equal(RefusalReason.HeadTooLarge, refused.Refusal);
        Assert.Equal(431, refused.Refusal!.Value.StatusCode());
    }

    [Fact]
    public void Too_large_is_known_as_soon_as_the_buffer_passes_the_limit_without_an_empty_line()
    {
        var limits = new Http1ParseLimits { MaxHeadBytes = 100 };
        var head = Heads.Bytes("CONNECT a.test:443 HTTP/1.1\r\nX-Long: " + new string('v', 200));

        Assert.Equal(Http1ParseStatus.Incomplete, Heads.Parse(head[..100], limits).Status);
        var refused = Heads.Parse(head[..101], limits);
        Assert.Equal(RefusalReason.HeadTooLarge, refused.Refusal);
        Assert.Equal("request head larger than the limit", refused.Detail);

        // The same over several segments.
        Assert.Equal(RefusalReason.HeadTooLarge, Http1ConnectParser.Parse(TestSequences.Split(head[..101], 50, 100), limits).Refusal);
    }

    [Fact]
    public void Bytes_pipelined_after_a_head_within_the_limit_do_not_count()
    {
        var limits = new Http1ParseLimits { MaxHeadBytes = Heads.Minimal.Length };
        var buffered = Heads.Bytes(Heads.Minimal + new string('x', 10_000));

        var result = Heads.Parse(buffered, limits);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(Heads.Minimal.Length, result.HeadLength);
    }

    [Fact]
    public void A_huge_buffer_is_refused_from_its_first_window()
    {
        var buffered = new byte[4 * 1024 * 1024];
        Array.Fill(buffered, (byte)'a');

        var result = Heads.Parse(buffered);

        Assert.Equal(RefusalReason.HeadTooLarge, result.Refusal);
        Assert.InRange(result.HeadLength, 0, Http1ParseLimits.Default.MaxHeadBytes);
    }

    [Fact]
    public void An_error_inside_the_window_wins_over_the_size()
    {
        var limits = new Http1ParseLimits { MaxHeadBytes = 64 };
        var buffered = Heads.Bytes("GET / HTTP/1.1\r\n" + new string('a', 100));

        Assert.Equal(RefusalReason.MethodNotAllowed, Heads.Parse(buffered, limits).Refusal);
    }

    [Fact]
    public void Header_count_up_to_the_limit_is_complete_and_one_more_is_too_large()
    {
        int max = Http1ParseLimits.Default.MaxHeaderCount;
        Assert.Equal(Http1ParseStatus.Complete, Heads.Parse(HeadWithFields(max) + "\r\n").Status);
        Assert.Equal(max, Heads.Parse(HeadWithFields(max) + "\r\n").Request!.HeaderCount);

        // Decided when the extra field's line ends, without waiting for the end of the head.
        var refused = Heads.Parse(HeadWithFields(max + 1));
        Assert.Equal(RefusalReason.HeadTooLarge, refused.Refusal);
        Assert.Equal("too many header fields", refused.Detail);
        Assert.Equal(Http1ParseStatus.Incomplete, Heads.Parse(HeadWithFields(max) + "X-Next: 1").Status);
    }

    [Fact]
    public void No_header_fields_at_all_can_be_required()
    {
        var limits = new Http1ParseLimits { MaxHeaderCount = 0 };

        // HTTP/1.0 needs no Host field (RFC 9112 §3.2), so a head with none is complete.
        Assert.Equal(Http1ParseStatus.Complete, Heads.Parse("CONNECT a.test:443 HTTP/1.0\r\n\r\n", limits).Status);
        Assert.Equal(RefusalReason.HeadTooLarge, Heads.Parse(Heads.Minimal, limits).Refusal);
    }

    [Fact]
    public void Nonsense_limits_are_a_caller_bug()
    {
        var bytes = new ReadOnlySequence<byte>(Heads.Bytes(Heads.Minimal));

        Assert.Throws<ArgumentOutOfRangeException>(() => Http1ConnectParser.Parse(bytes, new Http1ParseLimits { MaxHeadBytes = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => Http1ConnectParser.Parse(bytes, new Http1ParseLimits { MaxHeaderCount = -1 }));
        Assert.Throws<ArgumentNullException>(() => Http1ConnectParser.Parse(bytes, null!));
    }

    /// <summary>A complete head of exactly <paramref name="length"/> bytes, padded in one field value.</summary>
    private static byte[] HeadOfLength(int length)
    {
        const string Start = "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nX-Pad: ";
        const string End = "\r\n\r\n";
        return Heads.Bytes(Start + new string('p', length - Start.Length - End.Length) + End);
    }

    private static string HeadWithFields(int count)
    {
        var head = new StringBuilder("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n");
        for (int i = 1; i < count; i++)
        {
            head.Append("X-F").Append(i).Append(": ").Append(i).Append("\r\n");
        }

        return head.ToString();
    }
}
