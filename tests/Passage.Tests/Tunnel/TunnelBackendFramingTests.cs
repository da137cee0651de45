using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Answers a backend frames badly or oddly, through real tunnel ends: each gets a clear answer (502 with Proxy-Status,
/// or the answer framed right), never a Kestrel failure, a hang, or the session taken down for everyone.
/// </summary>
public sealed class TunnelBackendFramingTests : IAsyncLifetime
{
    private static readonly Dictionary<string, string> Answers = new()
    {
        ["/switch"] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
        ["/two-lengths"] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ["/same-length-twice"] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
        ["/length-and-chunked"] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ["/no-content-with-length"] = "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello",
        ["/declined-two-lengths"] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ["/beyond-ascii"] = "HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\nContent-Length: 2\r\n\r\nok",
    };

    private RawBackend _backend = null!;
    private TunnelPair _pair = null!;

    public async Task InitializeAsync()
    {
        _backend = new RawBackend(Answers);
        _pair = await TunnelPair.StartAsync(backendPort: _backend.Port);
    }

    public async Task DisposeAsync()
    {
        await _pair.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Fact]
    public async Task A_101_nobody_asked_for_gets_502_and_the_session_stays_up()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/switch").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.StartsWith("passage; error=http_protocol_error", Assert.Single(response.Headers.GetValues("Proxy-Status")), StringComparison.Ordinal);

        using var next = await client.GetAsync("/after").WaitAsync(Timeouts.Default);
        Assert.Equal("ok", await next.Content.ReadAsStringAsync());
        Assert.DoesNotContain("tunnel down", _pair.Client.StandardOutput + _pair.Client.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Lengths_that_disagree_get_502_without_a_failure_in_the_log()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/two-lengths").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.StartsWith("passage; error=http_protocol_error", Assert.Single(response.Headers.GetValues("Proxy-Status")), StringComparison.Ordinal);
        await _pair.Server.WaitForLineAsync(l => l.Contains("delivered, but its answer could not be passed on", StringComparison.Ordinal) && l.Contains("Content-Length is invalid", StringComparison.Ordinal));
        Assert.DoesNotContain("fail:", _pair.Server.StandardOutput + _pair.Server.StandardError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_same_length_twice_passes_on_once()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/same-length-twice").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(5, response.Content.Headers.ContentLength);
        Assert.Equal("hello", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_length_beside_chunked_framing_is_dropped_and_the_body_arrives_whole()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/length-and-chunked").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("hello", await response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
        Assert.NotEqual(100, response.Content.Headers.ContentLength);
    }

    [Fact]
    public async Task A_204_passes_on_without_a_length_or_a_body()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/no-content-with-length").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.NoContent, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.False(response.Content.Headers.Contains("Content-Length"));
    }

    [Fact]
    public async Task An_answer_field_beyond_ASCII_crosses_byte_for_byte()
    {
        using var client = new HttpClient(new SocketsHttpHandler { UseProxy = false, ResponseHeaderEncodingSelector = (_, _) => System.Text.Encoding.Latin1 });
        using var response = await client.GetAsync(new Uri(_pair.BaseAddress, "/beyond-ascii")).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("caf\u00e9", Assert.Single(response.Headers.GetValues("X-Name")));
    }

    [Fact]
    public async Task An_upgrade_declined_with_lengths_that_disagree_gets_502()
    {
        var head = await RawHttp1.SendHeadAsync(_pair.HttpPort, "GET /declined-two-lengths HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        Assert.Contains("Proxy-Status: passage; error=http_protocol_error", head, StringComparison.OrdinalIgnoreCase);
    }
}
