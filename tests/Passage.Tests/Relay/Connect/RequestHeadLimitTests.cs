using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// One <c>--max-request-head</c> for both doors: a request's HTTP/2 header list is measured as the HTTP/1.1 head that
/// would carry it, so that the same request fits on both or on neither, and each door takes a head of exactly the limit
/// and answers 431 one byte past it.
/// </summary>
public sealed class RequestHeadLimitTests
{
    private const int Limit = 1200;

    /// <summary>The longest token a token file holds (1 KiB).</summary>
    private static readonly string Token = new('t', 1024);

    [Fact]
    public async Task A_request_with_a_1_KiB_token_under_a_1200_byte_limit_is_served_on_both_doors()
    {
        await using var echo = new EchoServer();
        await using var relay = await StartAsync();

        var (http1, _, socket) = await relay.SendHeadAsync(Http1Head(echo.Port, padding: ""));
        using var _ = socket;
        var http2 = await ConnectRelayHttp2RequestTests.AnswerAsync(relay, Http2Request(echo.Port, padding: ""));

        Assert.Equal(200, http1);
        Assert.Equal(200, http2.Status);
        Assert.Equal(0, relay.Total("passage.relay.connections.refused"));
    }

    [Theory]
    [InlineData(0, 200)]
    [InlineData(1, 431)]
    public async Task An_http1_head_of_the_limit_is_served_and_one_byte_more_gets_431(int past, int status)
    {
        await using var echo = new EchoServer();
        await using var relay = await StartAsync();
        var head = Http1Head(echo.Port, Padding(Http1Head(echo.Port, "").Length, past));
        Assert.Equal(Limit + past, head.Length);

        var (answer, _, socket) = await relay.SendHeadAsync(head);
        using var _ = socket;

        Assert.Equal(status, answer);
        Assert.Equal(past, relay.Counter("passage.relay.connections.refused/http_request_head_too_large"));
    }

    [Theory]
    [InlineData(0, 200)]
    [InlineData(1, 431)]
    public async Task An_http2_header_list_whose_http1_head_is_the_limit_is_served_and_one_byte_more_gets_431(int past, int status)
    {
        await using var echo = new EchoServer();
        await using var relay = await StartAsync();
        var padding = Padding(Http1Equivalent(echo.Port, "").Length, past);
        Assert.Equal(Limit + past, Http1Equivalent(echo.Port, padding).Length);

        var answer = await ConnectRelayHttp2RequestTests.AnswerAsync(relay, Http2Request(echo.Port, padding));

        Assert.Equal(status, answer.Status);
        Assert.Equal(past, relay.Counter("passage.relay.connections.refused/http_request_head_too_large"));
    }

    [Theory]
    [InlineData(false, Utf8, 0, 200)]
    [InlineData(false, Utf8, 1, 431)]
    [InlineData(true, Utf8, 0, 200)]
    [InlineData(true, Utf8, 1, 431)]
    [InlineData(false, ObsText, 0, 200)]
    [InlineData(false, ObsText, 1, 431)]
    [InlineData(true, ObsText, 0, 200)]
    [InlineData(true, ObsText, 1, 431)]
    public async Task A_head_with_a_non_ASCII_value_is_measured_in_bytes_on_both_doors(bool http2, string character, int past, int status)
    {
        // Each character of these strings is one byte on the wire: the value's bytes, whatever they spell, are counted.
        var accents = string.Concat(Enumerable.Repeat(character, 5));
        await using var echo = new EchoServer();
        await using var relay = await StartAsync();
        Func<string, string> head = http2 ? padding => Http1Equivalent(echo.Port, padding) : padding => Http1Head(echo.Port, padding);
        var padding = accents + Padding(head(accents).Length, past);
        Assert.Equal(Limit + past, head(padding).Length);

        int answer;
        if (http2)
        {
            answer = (await ConnectRelayHttp2RequestTests.AnswerAsync(relay, Http2Request(echo.Port, padding))).Status;
        }
        else
        {
            (answer, _, var socket) = await relay.SendHeadAsync(Http1Head(echo.Port, padding));
            socket.Dispose();
        }

        Assert.Equal(status, answer);
        Assert.Equal(past, relay.Counter("passage.relay.connections.refused/http_request_head_too_large"));
    }

    /// <summary>
    /// The largest head limit the settings take (1 MiB) starts the relay and serves both doors: Kestrel refuses to start
    /// with header bounds (twice the relay's) above its request buffer (1 MiB by default), so a limit over 512 KiB ended
    /// the start in a stack trace though <c>config check</c> took it.
    /// </summary>
    [Fact]
    public async Task The_largest_head_limit_starts_the_relay_and_both_doors_serve_under_it()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o => o with { MaxRequestHeadBytes = 1024 * 1024 });
        var padding = new string('p', 8000);

        var (http1, _, socket) = await relay.SendHeadAsync($"CONNECT 127.0.0.1:{echo.Port} HTTP/1.1\r\nHost: 127.0.0.1:{echo.Port}\r\nx-padding: {padding}\r\n\r\n");
        using var _ = socket;
        var http2 = await ConnectRelayHttp2RequestTests.AnswerAsync(relay, RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(
            (":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":authority", "relay.test"),
            (":path", MasqueTcpPath.PathFor("127.0.0.1", echo.Port)), ("x-padding", padding))));

        Assert.Equal(200, http1);
        Assert.Equal(200, http2.Status);
    }

    /// <summary>"é" in UTF-8, two bytes.</summary>
    private const string Utf8 = "\u00c3\u00a9";

    /// <summary>"é" in Latin-1, one byte of obs-text (RFC 9110 §5.5), which is not UTF-8.</summary>
    private const string ObsText = "\u00e9";

    private static Task<ConnectHarness> StartAsync() => ConnectHarness.StartAsync(o =>
    {
        var file = Path.Combine(Path.GetDirectoryName(o.KeyFile)!, "tokens");
        File.WriteAllText(file, Token + "\n");
        return o with { TokenFile = file, MaxRequestHeadBytes = Limit };
    });

    /// <summary>The value of an <c>x-padding</c> field that brings a head of <paramref name="unpadded"/> bytes (with an empty one) to the limit, plus <paramref name="past"/>.</summary>
    private static string Padding(int unpadded, int past) => new('p', Limit - unpadded + past);

    private static string Http1Head(int port, string padding) =>
        $"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nProxy-Authorization: Bearer {Token}\r\nx-padding: {padding}\r\n\r\n";

    /// <summary>The HTTP/1.1 head that <see cref="Http2Request"/> measures as.</summary>
    private static string Http1Equivalent(int port, string padding) =>
        $"CONNECT {MasqueTcpPath.PathFor("127.0.0.1", port)} HTTP/1.1\r\nHost: relay.test\r\n:scheme: https\r\n:protocol: connect-tcp\r\n" +
        $"proxy-authorization: Bearer {Token}\r\nx-padding: {padding}\r\n\r\n";

    private static byte[] Http2Request(int port, string padding) => RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(
        (":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":authority", "relay.test"),
        (":path", MasqueTcpPath.PathFor("127.0.0.1", port)), ("proxy-authorization", $"Bearer {Token}"), ("x-padding", padding)));
}
