using System.Net;
using System.Security.Cryptography;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Trailer fields (RFC 9110 §6.5) through a real client end and server end: response trailers from the backend
/// reach an HTTP/1.1 application, and request trailers the application announced reach the backend.
/// </summary>
public sealed class TunnelTrailerTests(TunnelPairFixture fixture) : IClassFixture<TunnelPairFixture>
{
    private TunnelPair Pair => fixture.Pair;

    [Fact]
    public async Task Response_trailers_reach_an_HTTP11_client_after_the_body()
    {
        using var client = Pair.CreateHttpClient();
        using var response = await client.GetAsync("/trailers/300000").WaitAsync(Timeouts.Default);
        var body = await response.Content.ReadAsByteArrayAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(300_000, body.Length);
        Assert.True(response.Headers.TransferEncodingChunked);
        Assert.Equal("x-sha256, x-length", string.Join(", ", response.Headers.GetValues("Trailer")));
        Assert.Equal(Convert.ToHexString(SHA256.HashData(body)), Assert.Single(response.TrailingHeaders.GetValues("x-sha256")));
        Assert.Equal("300000", Assert.Single(response.TrailingHeaders.GetValues("x-length")));
        // Fields a trailer section may not carry are not passed on.
        Assert.False(response.TrailingHeaders.Contains("Set-Cookie"));
        Assert.DoesNotContain(response.TrailingHeaders.NonValidated, t => t.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Curl_sees_the_response_trailers()
    {
        var headers = Path.Combine(Pair.Directory, "trailers-dump.txt");
        var result = await Curl.RunAsync("--dump-header", headers, "--output", "/dev/null", new Uri(Pair.BaseAddress, "/trailers/1000").ToString());
        Assert.Equal(0, result.ExitCode);
        var dump = await File.ReadAllTextAsync(headers);
        var expected = Convert.ToHexString(SHA256.HashData(TunnelBackend.Pattern(0, 1000)));
        Assert.Contains($"x-sha256: {expected}\r\n", dump);
        Assert.Contains("x-length: 1000\r\n", dump);
        Assert.DoesNotContain("a=b", dump);
    }

    /// <summary>
    /// An HTTP/1.0 application cannot be sent trailers (RFC 9112 §7.1: no chunked framing to it), so they are dropped, and
    /// with them the Trailer field that announced them (RFC 9110 §6.6.2): it would announce fields that never come.
    /// </summary>
    [Fact]
    public async Task An_HTTP10_application_gets_the_body_without_trailers_or_the_field_announcing_them()
    {
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort, "GET /trailers/1000 HTTP/1.0\r\nHost: app.test\r\n\r\n", readToEnd: true);
        var (head, body) = (answer.Split("\r\n\r\n", 2)[0], answer.Split("\r\n\r\n", 2)[1]);
        Assert.StartsWith("HTTP/1.1 200 ", head);
        Assert.DoesNotContain("\r\nTrailer:", head, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("\r\nTransfer-Encoding:", head, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(TunnelBackend.Pattern(0, 1000), Encoding.Latin1.GetBytes(body));
    }

    [Fact]
    public async Task A_HEAD_request_gets_the_head_alone()
    {
        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Head, "/trailers/5000");
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("x-sha256, x-length", string.Join(", ", response.Headers.GetValues("Trailer")));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Fact]
    public async Task Announced_request_trailers_reach_the_backend_and_forbidden_ones_do_not()
    {
        var body = Encoding.ASCII.GetBytes("a body with trailers");
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(Pair.HttpPort, "POST", "/hash", new MemoryStream(body),
            "Trailer: x-digest, x-note\r\n", "x-digest: sha-256=abc\r\nX-Note: two  words\r\nHost: elsewhere.test\r\nContent-Length: 3\r\n", cts.Token);

        Assert.Equal(200, answer.Status);
        var text = Encoding.ASCII.GetString(answer.Body);
        Assert.Equal($"POST {body.Length} {Convert.ToHexString(SHA256.HashData(body))} cl=none te=chunked trailers=x-digest:sha-256=abc;x-note:two  words", text);
    }

    /// <summary>
    /// A request with trailers goes to the backend on a connection of its own, in a head Passage writes itself: an
    /// application that accepts trailers has the backend asked for them there too (the head's bytes:
    /// <see cref="ChunkedRequestHandlerTests.A_request_that_accepts_trailers_asks_the_backend_for_them"/>).
    /// </summary>
    [Fact]
    public async Task A_request_with_trailers_from_an_application_that_accepts_them_has_the_backend_asked_for_them()
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(Pair.HttpPort, "POST", "/headers", new MemoryStream("x"u8.ToArray()),
            "Trailer: x-digest\r\nTE: trailers\r\n", "x-digest: abc\r\n", cts.Token);

        Assert.Equal(200, answer.Status);
        var seen = Encoding.Latin1.GetString(answer.Body);
        Assert.StartsWith("POST /headers\n", seen);
        Assert.Contains("\nte: trailers\n", seen);
    }

    [Fact]
    public async Task A_large_upload_with_trailers_streams_while_the_backend_echoes_it()
    {
        // 48 MiB is more than loopback socket buffers hold: sending it all before reading the echo would stall.
        const long size = 48L * 1024 * 1024;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var answer = await RawHttp1.SendChunkedAsync(Pair.HttpPort, "PUT", "/echo", new SizedPatternStream(size),
            "Trailer: x-digest\r\nContent-Type: application/octet-stream\r\n", "x-digest: done\r\n", cts.Token);

        Assert.Equal(200, answer.Status);
        Assert.Equal(size, answer.Body.LongLength);
        Assert.Equal(SizedPatternStream.Hash(size), Convert.ToHexString(SHA256.HashData(answer.Body)));
        Assert.Equal("application/octet-stream", answer.Fields["Content-Type"]);
    }

    /// <summary>
    /// A request with trailers goes on a backend connection of its own, counted against the backend connections' cap (here
    /// 1) with the pooled ones: while a pooled request the backend does not answer holds the one slot, the application's
    /// request with trailers is answered 503 with Proxy-Status <c>connection_limit_reached</c>; once that request has
    /// ended, its slot comes back and the request with trailers goes through again.
    /// </summary>
    [Fact]
    public async Task A_request_with_trailers_at_the_backend_connection_cap_gets_503_connection_limit_reached()
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, backendConnectionLimit: 1, clientEnd: true);
        using var cts = new CancellationTokenSource(Timeouts.Default);
        Task<RawHttp1.Answer> SendWithTrailersAsync() => RawHttp1.SendChunkedAsync(ends.HttpPort, "POST", "/hash",
            new MemoryStream("a body with trailers"u8.ToArray()), "Trailer: x-digest\r\n", "x-digest: abc\r\n", cts.Token);

        // Below the cap it goes through, and its connection gives the slot back when the exchange ends.
        Assert.Equal(200, (await SendWithTrailersAsync()).Status);

        using var application = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ends.HttpPort}") };
        using var stopHolding = CancellationTokenSource.CreateLinkedTokenSource(cts.Token);
        var holding = application.GetAsync("/silent", stopHolding.Token);
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref backend.Requests) >= 2);

        var refused = await SendWithTrailersAsync();
        Assert.Equal(503, refused.Status);
        Assert.Contains("error=connection_limit_reached", refused.Fields["Proxy-Status"], StringComparison.Ordinal);

        await stopHolding.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => holding);
        int status;
        do
        {
            status = (await SendWithTrailersAsync()).Status;
        }
        while (status == 503);
        Assert.Equal(200, status);
    }

    [Fact]
    public async Task Trailers_that_were_not_announced_are_not_forwarded()
    {
        var body = Encoding.ASCII.GetBytes("unannounced");
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(Pair.HttpPort, "POST", "/hash", new MemoryStream(body), "", "x-digest: abc\r\n", cts.Token);
        Assert.Equal($"POST {body.Length} {Convert.ToHexString(SHA256.HashData(body))} cl=none te=chunked", Encoding.ASCII.GetString(answer.Body));
    }
}
