using System.Text;
using Microsoft.Extensions.Primitives;
using Passage.Client.HttpProxy;
using Passage.Http;
using Passage.Tests.Tunnel;

namespace Passage.Tests.Http;

/// <summary>
/// RFC 9110 §7.6.2: Max-Forwards is <c>1*DIGIT</c>, so leading zeros count for nothing however many there are: a value of
/// 0 written in 19 digits makes its recipient the final one as <c>0</c> does, and one of 1 in 20 digits goes on as 0.
/// </summary>
public sealed class MaxForwardsTests
{
    [Theory]
    [InlineData("0", 0L)]
    [InlineData("00", 0L)]
    [InlineData("0000000000000000000", 0L)]
    [InlineData("00000000000000000001", 1L)]
    [InlineData("000000000000000000000000000000999999999999999999", 999999999999999999L)]
    [InlineData("0000000000000000000000000000001000000000000000000", 999999999999999999L)]
    [InlineData("99999999999999999999999999999999999999999999999999", 999999999999999999L)]
    [InlineData("-1", null)]
    [InlineData("1e3", null)]
    [InlineData("", null)]
    public void Leading_zeros_count_for_nothing(string value, long? remaining)
    {
        Assert.Equal(remaining, MaxForwards.Remaining("OPTIONS", value));
        Assert.Null(MaxForwards.Remaining("GET", value));
    }

    [Fact]
    public void The_http_proxy_counts_down_a_value_written_with_leading_zeros()
    {
        var head = ProxyRequestHead.Parse(
            Encoding.ASCII.GetBytes("TRACE http://origin.test/ HTTP/1.1\r\nMax-Forwards: 00000000000000000002\r\n\r\n"), out var why);
        Assert.True(head is not null, why);
        Assert.Equal(2, head.MaxForwards);
        Assert.Contains("\r\nMax-Forwards: 1\r\n", Encoding.ASCII.GetString(head.ToOriginForm()), StringComparison.Ordinal);
        Assert.Equal(0, ProxyRequestHead.Parse(
            Encoding.ASCII.GetBytes("OPTIONS http://origin.test/ HTTP/1.1\r\nMax-Forwards: 0000000000000000000\r\n\r\n"), out _)?.MaxForwards);
    }

    /// <summary>Through a client end and a server end: the end at which the count runs out answers, the backend never asked.</summary>
    [Theory]
    [InlineData("0000000000000000000", "client end")]
    [InlineData("00000000000000000001", "server end")]
    public async Task The_tunnel_end_at_which_a_zero_padded_count_runs_out_answers(string maxForwards, string end)
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);

        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, $"OPTIONS /headers HTTP/1.1\r\nHost: service\r\nMax-Forwards: {maxForwards}\r\nConnection: close\r\n\r\n");

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Contains($"error=proxy_internal_response; details=\"Max-Forwards is 0: answered by the {end}\"", answer, StringComparison.Ordinal);
        Assert.Equal(0, Volatile.Read(ref backend.Requests));
    }

    [Fact]
    public void A_value_that_is_not_one_number_is_no_count()
    {
        Assert.Null(MaxForwards.Remaining("TRACE", new StringValues(["0", "0"])));
        Assert.Null(MaxForwards.Remaining("TRACE", "0, 0"));
    }
}
