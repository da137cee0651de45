using System.Net;
using System.Security.Cryptography;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A field the head's Connection field names is this hop's (RFC 9110 §7.6.1), in the trailer section as in the head:
/// it is not passed on either way, while the message's other trailer fields are.
/// </summary>
public sealed class TunnelTrailerConnectionTests
{
    [Fact]
    public async Task A_request_trailer_field_named_in_Connection_does_not_reach_the_backend()
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);
        var body = Encoding.ASCII.GetBytes("a body with trailers");
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(ends.HttpPort, "POST", "/hash", new MemoryStream(body),
            "Connection: x-hop\r\nTrailer: x-digest, x-hop\r\n", "x-digest: abc\r\nX-Hop: this hop's\r\n", cts.Token, close: false);

        Assert.Equal(200, answer.Status);
        Assert.Equal($"POST {body.Length} {Convert.ToHexString(SHA256.HashData(body))} cl=none te=chunked trailers=x-digest:abc", Encoding.ASCII.GetString(answer.Body));
    }

    [Fact]
    public async Task An_answer_trailer_field_named_in_Connection_does_not_reach_the_application()
    {
        await using var backend = new RawBackend(new Dictionary<string, string>
        {
            ["/hop-trailer"] = "HTTP/1.1 200 OK\r\nConnection: x-hop\r\nTrailer: x-sum, x-hop\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nx-sum: 1\r\nX-Hop: 2\r\n\r\n",
        });
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);
        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ends.HttpPort}") };
        using var answer = await client.GetAsync("/hop-trailer").WaitAsync(Timeouts.Default);

        Assert.Equal(HttpStatusCode.OK, answer.StatusCode);
        Assert.Equal("ok", await answer.Content.ReadAsStringAsync());
        Assert.Equal("1", Assert.Single(answer.TrailingHeaders.GetValues("x-sum")));
        Assert.False(answer.TrailingHeaders.Contains("x-hop"));
    }
}
