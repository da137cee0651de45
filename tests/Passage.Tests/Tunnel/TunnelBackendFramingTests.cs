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
        ["/control-character"] = "HTTP/1.1 200 OK\r\nX-Bad: a\u0001b\r\nContent-Length: 2\r\n\r\nok",
        ["/delete-character"] = "HTTP/1.1 200 OK\r\nContent-Type: text/a\u007fb\r\nContent-Length: 2\r\n\r\nok",
        ["/switch-control-character"] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nX-Bad: a\u0001b\r\n\r\n",
        ["/trailer-control-character"] = "HTTP/1.1 200 OK\r\nTrailer: X-Good, X-Bad\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Good: 1\r\nX-Bad: a\u0001b\r\n\r\n",
        ["/gzip-then-chunked"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ["/gzip-to-the-end"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ["/chunked-twice-named"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ["/bad-field-name"] = "HTTP/1.1 200 OK\r\nX-Evil\"; error=none\\" + new string('a', 300) + ": v\r\nContent-Length: 2\r\n\r\nok",
        ["/beyond-ascii"] = "HTTP/1.1 200 OK\r\nX-Name: caf\u00e9\r\nContent-Length: 2\r\n\r\nok",
        ["/reset-content-with-body"] = "HTTP/1.1 205 Reset Content\r\nContent-Length: 5\r\n\r\nhello",
        ["/no-content"] = "HTTP/1.1 204 No Content\r\nX-Seen: 1\r\n\r\n",
        ["/proxy-challenge"] = "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"backend\"\r\nContent-Length: 2\r\n\r\nno",
        ["/too-large"] = "HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big\n",
        ["/head-too-large"] = "HTTP/1.1 200 OK\r\nX-Large: " + new string('a', 70 * 1024) + "\r\nContent-Length: 2\r\n\r\nok",
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

    /// <summary>
    /// A field value with a control character other than HTAB is invalid (RFC 9110 §5.5), and Kestrel will not send one:
    /// copied onto the answer it threw, so the application got a bare 500 and the server end logged a failure. It gets
    /// 502 with the reason, the session stays up; the same for an upgrade the backend accepted with such a field.
    /// </summary>
    [Theory]
    [InlineData("/control-character")]
    [InlineData("/delete-character")]
    [InlineData("/switch-control-character")]
    public async Task A_field_value_with_a_control_character_gets_502_without_a_failure_in_the_log(string path)
    {
        var upgrade = path.StartsWith("/switch", StringComparison.Ordinal)
            ? "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            : "";
        var answer = await RawHttp1.SendHeadAsync(_pair.HttpPort, $"GET {path} HTTP/1.1\r\nHost: app.test\r\n{upgrade}\r\n");
        Assert.StartsWith("HTTP/1.1 502 ", answer, StringComparison.Ordinal);
        Assert.Contains("proxy-status: passage; error=http_protocol_error; details=\"a field value of the answer holds a control character\"", answer, StringComparison.Ordinal);

        using var client = _pair.CreateHttpClient();
        using var next = await client.GetAsync("/after").WaitAsync(Timeouts.Default);
        Assert.Equal("ok", await next.Content.ReadAsStringAsync());
        Assert.DoesNotContain("fail:", _pair.Server.StandardOutput + _pair.Server.StandardError, StringComparison.Ordinal);
    }

    /// <summary>
    /// A trailer field with a control character comes once the body has gone: Kestrel threw on it, and the application saw
    /// its whole answer reset. The field is dropped, as the client end's own chunked framing drops it; the others pass.
    /// </summary>
    [Fact]
    public async Task A_trailer_field_with_a_control_character_is_dropped_and_the_answer_completes()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/trailer-control-character").WaitAsync(Timeouts.Default);
        Assert.Equal("ok", await response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
        Assert.Equal("1", Assert.Single(response.TrailingHeaders.GetValues("X-Good")));
        Assert.False(response.TrailingHeaders.Contains("X-Bad"));
        Assert.DoesNotContain("fail:", _pair.Server.StandardOutput + _pair.Server.StandardError, StringComparison.Ordinal);
    }

    /// <summary>
    /// A transfer coding other than chunked (RFC 9112 §6.1) is this hop's, and HTTP/2 has none to carry it on: the coding
    /// was dropped with the field that named it, so the application took the still coded bytes for the content. Such an
    /// answer gets 502 with the reason; chunked alone, in any case, passes.
    /// </summary>
    [Theory]
    [InlineData("/gzip-then-chunked", HttpStatusCode.BadGateway)]
    [InlineData("/gzip-to-the-end", HttpStatusCode.BadGateway)]
    [InlineData("/chunked-twice-named", HttpStatusCode.OK)]
    public async Task A_transfer_coding_other_than_chunked_gets_502(string path, HttpStatusCode expected)
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync(path).WaitAsync(Timeouts.Default);
        Assert.Equal(expected, response.StatusCode);
        if (expected == HttpStatusCode.OK)
        {
            Assert.Equal("hello", await response.Content.ReadAsStringAsync());
            return;
        }
        Assert.Equal("passage; error=http_protocol_error; details=\"the answer has a transfer coding other than chunked\"", Assert.Single(response.Headers.GetValues("Proxy-Status")));
    }

    /// <summary>
    /// The backend's own bytes are not reflected to the application: the HTTP client names an invalid field name by quoting
    /// it, which went out whole in the Proxy-Status details. The problem is named, with the name's first characters escaped.
    /// </summary>
    [Fact]
    public async Task An_invalid_field_name_gets_502_naming_the_problem_without_reflecting_the_name()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/bad-field-name").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var status = Assert.Single(response.Headers.GetValues("Proxy-Status"));
        Assert.Equal("passage; error=http_protocol_error; details=\"a field name of the answer is invalid: 'X-Evil\\\\x22\\\\x3B\\\\x20error\\\\x3Dnone\\\\x5Caaaaaaaaaaaa...'\"", status);
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

    /// <summary>A backend's proxy challenge is for the server end's HTTP client, the client it answers (RFC 9110 §11.7.1): the application gets the answer without it.</summary>
    [Fact]
    public async Task A_backends_proxy_challenge_stays_at_the_server_end()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/proxy-challenge").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, response.StatusCode);
        Assert.Equal("no", await response.Content.ReadAsStringAsync());
        Assert.False(response.Headers.Contains("Proxy-Authenticate"));
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

    /// <summary>
    /// An application that sends <c>Expect: 100-continue</c> waits for 100 before its body; a backend that refuses the
    /// request at once, without reading it, has its answer reach the application first, with no body asked for (the
    /// expectation crosses to the backend, and the HTTP client at each hop sends no body above 1 KiB, or of unknown length,
    /// once a final error answer has come). A smaller body, a 2xx answer and a request with trailers have the body asked for
    /// (100 Continue) and sent before the answer comes back: the runtime's HTTP/1.1 client finishes sending a body it has
    /// begun before it returns the answer.
    /// </summary>
    [Theory]
    [InlineData("Content-Length: 1048576")]
    [InlineData("Transfer-Encoding: chunked")]
    public async Task A_backends_refusal_of_an_expected_body_reaches_the_application_before_any_100(string framing)
    {
        var asked = System.Diagnostics.Stopwatch.StartNew();
        var head = await RawHttp1.SendHeadAsync(_pair.HttpPort, $"POST /too-large HTTP/1.1\r\nHost: app.test\r\n{framing}\r\nExpect: 100-continue\r\n\r\n");
        if (head.StartsWith("HTTP/1.1 100 ", StringComparison.Ordinal))
        {
            // Each hop's HTTP client waits a second for the backend's verdict, then sends the body all the same (RFC 9110
            // §10.1.1 lets it): on a machine too busy to carry the 413 back within it, the body is asked for. Never before.
            Assert.True(asked.Elapsed >= TimeSpan.FromMilliseconds(900), $"100 Continue after {asked.Elapsed.TotalMilliseconds:0} ms, before any hop's wait for the backend ran out");
            return;
        }
        Assert.StartsWith("HTTP/1.1 413 ", head, StringComparison.Ordinal);
    }

    /// <summary>
    /// A 205 may generate no content (RFC 9110 §15.3.6), though its framing may bring some: Kestrel threw on the first byte
    /// passed on, and the application got 502 "the answer is malformed: 'INTERNAL_ERROR'" for the server end's own reset.
    /// A declined upgrade crosses the link as 200 with the real status beside it, and the application's answer was framed
    /// by the 200: a 204 or 205 got chunked framing, on which Kestrel threw, and the application saw its connection reset.
    /// Each passes on without content.
    /// </summary>
    [Theory]
    [InlineData("/reset-content-with-body", false, "HTTP/1.1 205 ")]
    [InlineData("/no-content", true, "HTTP/1.1 204 ")]
    [InlineData("/reset-content-with-body", true, "HTTP/1.1 205 ")]
    public async Task An_answer_without_content_passes_on_without_any(string path, bool declinedUpgrade, string expected)
    {
        var upgrade = declinedUpgrade
            ? "Connection: Upgrade, close\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            : "Connection: close\r\n";
        var answer = await RawHttp1.SendHeadAsync(_pair.HttpPort, $"GET {path} HTTP/1.1\r\nHost: app.test\r\n{upgrade}\r\n", readToEnd: true);
        Assert.StartsWith(expected, answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("Transfer-Encoding", answer, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("hello", answer, StringComparison.Ordinal);
    }

    /// <summary>
    /// A backend that answers at once and closes, leaving a large body unread (as servers do with a 413), breaks the
    /// server end's send: the pooled HTTP client drops the answer then, and the application gets 502. Its details said
    /// only the HTTP client's "Error while copying content to a stream."; they say what happened.
    /// </summary>
    [Fact]
    public async Task A_backend_that_closes_without_taking_the_body_gets_502_saying_so()
    {
        using var client = _pair.CreateHttpClient();
        using var content = new StreamContent(new SizedPatternStream(64L * 1024 * 1024));
        using var response = await client.PostAsync("/too-large", content).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal("passage; error=connection_terminated; details=\"the connection ended before the request body was sent whole\"",
            Assert.Single(response.Headers.GetValues("Proxy-Status")));
    }

    /// <summary>
    /// An answer head past the 64 KiB the server end takes from a backend is refused as RFC 9209 §2.3.14 names it, on the
    /// pooled way and on a request with trailers, which Passage's own HTTP/1.1 code sends; the session stays up.
    /// </summary>
    [Theory]
    [InlineData("GET /head-too-large HTTP/1.1\r\nHost: app.test\r\n\r\n")]
    [InlineData("POST /head-too-large HTTP/1.1\r\nHost: app.test\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Sum: 1\r\n\r\n")]
    public async Task An_answer_head_too_large_gets_502_naming_its_size(string request)
    {
        var head = await RawHttp1.SendHeadAsync(_pair.HttpPort, request);
        Assert.StartsWith("HTTP/1.1 502 ", head, StringComparison.Ordinal);
        var status = head.Split("\r\n").Single(l => l.StartsWith("Proxy-Status:", StringComparison.OrdinalIgnoreCase));
        Assert.Equal("passage; error=http_response_header_section_size; details=\"the answer head is larger than 64 KiB\"", status["Proxy-Status:".Length..].Trim());

        using var client = _pair.CreateHttpClient();
        using var next = await client.GetAsync("/after").WaitAsync(Timeouts.Default);
        Assert.Equal("ok", await next.Content.ReadAsStringAsync());
    }
}
