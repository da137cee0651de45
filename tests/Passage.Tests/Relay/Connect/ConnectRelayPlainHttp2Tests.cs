using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>HTTP/2 with prior knowledge (RFC 9113 §3.3) on the plain endpoint, beside HTTP/1.1.</summary>
public sealed class ConnectRelayPlainHttp2Tests
{
    [Fact]
    public async Task HttpClient_with_prior_knowledge_opens_extended_connect_tunnels_on_the_plain_endpoint()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        using var client = new HttpClient(new SocketsHttpHandler())
        {
            BaseAddress = new Uri($"http://127.0.0.1:{relay.PlainPort}"),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeouts.Default,
        };
        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var tunnel = await response.Content.ReadAsStreamAsync();
        await tunnel.WriteAsync("over h2c"u8.ToArray());
        await tunnel.FlushAsync();
        var back = new byte[8];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("over h2c"u8.ToArray(), back);
    }

    [Fact]
    public async Task A_preface_that_arrives_in_pieces_is_still_recognized()
    {
        await using var relay = await ConnectHarness.StartAsync();
        using var socket = await relay.ConnectPlainAsync();
        var preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();
        foreach (var piece in new[] { preface[..3], preface[3..17], preface[17..] })
        {
            await Loopback.SendAllAsync(socket, piece);
            await Task.Delay(20);
        }
        // An empty SETTINGS frame (RFC 9113 §6.5): length 0, type 4, flags 0, stream 0.
        await Loopback.SendAllAsync(socket, new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 });
        // The server's first frame is its SETTINGS.
        var header = await Loopback.ReadToEndAsync(socket, limit: 9);
        Assert.Equal(9, header.Length);
        Assert.Equal(4, header[3]);
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/http_protocol_error"));
    }

    [Fact]
    public async Task Http1_bytes_that_start_like_the_preface_are_still_read_as_http1()
    {
        await using var relay = await ConnectHarness.StartAsync();
        // "PRI" is a valid method token: it gets the HTTP/1.1 answer for a method other than CONNECT.
        var (status, _, socket) = await relay.SendHeadAsync("PRI /x HTTP/1.1\r\nHost: a\r\n\r\n");
        using var _ = socket;
        Assert.Equal(405, status);
    }
}
