using System.Net;
using System.Net.Http.Headers;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>HTTP through a real client end and server end to a local backend: methods, bodies of every shape, headers, WebSocket.</summary>
public sealed class TunnelHttpTests(TunnelPairFixture fixture) : IClassFixture<TunnelPairFixture>
{
    private const long HundredMiB = 100L * 1024 * 1024;

    private TunnelPair Pair => fixture.Pair;

    [Theory]
    [InlineData("GET")]
    [InlineData("POST")]
    [InlineData("PUT")]
    [InlineData("DELETE")]
    public async Task Small_requests_arrive_with_their_method_and_body(string method)
    {
        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(new HttpMethod(method), "/hash");
        var body = Encoding.UTF8.GetBytes($"small {method} body");
        if (method != "GET")
        {
            request.Content = new ByteArrayContent(body);
        }
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        var text = await response.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var expected = method == "GET" ? $"GET 0 {Convert.ToHexString(SHA256.HashData([]))}" : $"{method} {body.Length} {Convert.ToHexString(SHA256.HashData(body))} cl={body.Length}";
        Assert.StartsWith(expected, text);
    }

    [Fact]
    public async Task A_100_MiB_upload_with_a_length_streams_through_intact()
    {
        using var client = Pair.CreateHttpClient();
        using var content = new StreamContent(new SizedPatternStream(HundredMiB));
        content.Headers.ContentLength = HundredMiB;
        using var response = await client.PostAsync("/hash", content).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal($"POST {HundredMiB} {SizedPatternStream.Hash(HundredMiB)} cl={HundredMiB} te=", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_100_MiB_chunked_upload_streams_through_intact()
    {
        using var client = Pair.CreateHttpClient();
        using var content = new StreamContent(new SizedPatternStream(HundredMiB));
        using var request = new HttpRequestMessage(HttpMethod.Put, "/hash") { Content = content };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request).WaitAsync(TimeSpan.FromSeconds(60));
        var text = await response.Content.ReadAsStringAsync();
        Assert.StartsWith($"PUT {HundredMiB} {SizedPatternStream.Hash(HundredMiB)} cl=none te=chunked", text);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_100_MiB_download_streams_through_intact(bool withLength)
    {
        using var client = Pair.CreateHttpClient();
        using var response = await client.GetAsync($"/bytes/{HundredMiB}{(withLength ? "?length" : "")}", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        Assert.Equal(withLength ? HundredMiB : null, response.Content.Headers.ContentLength);
        await using var body = await response.Content.ReadAsStreamAsync();
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[256 * 1024];
        long total = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        int n;
        while ((n = await body.ReadAsync(buffer, cts.Token)) > 0)
        {
            sha.AppendData(buffer, 0, n);
            total += n;
        }
        Assert.Equal(HundredMiB, total);
        Assert.Equal(SizedPatternStream.Hash(HundredMiB), Convert.ToHexString(sha.GetHashAndReset()));
    }

    [Fact]
    public async Task Curl_gets_posts_and_puts_chunked_through_the_tunnel()
    {
        var file = Path.Combine(Pair.Directory, "upload.bin");
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        await File.WriteAllBytesAsync(file, data);
        var hash = Convert.ToHexString(SHA256.HashData(data));
        var url = new Uri(Pair.BaseAddress, "/hash").ToString();

        var get = await Curl.RunAsync(new Uri(Pair.BaseAddress, "/plain/path?q=1").ToString());
        Assert.Equal(0, get.ExitCode);
        Assert.Equal("GET /plain/path", get.StandardOutput);

        var post = await Curl.RunAsync("--data-binary", "@" + file, url);
        Assert.StartsWith($"POST {data.Length} {hash} cl={data.Length}", post.StandardOutput);

        var put = await Curl.RunAsync("-T", file, "-H", "Transfer-Encoding: chunked", url);
        Assert.StartsWith($"PUT {data.Length} {hash} cl=none te=chunked", put.StandardOutput);
    }

    [Fact]
    public async Task Host_is_kept_hop_by_hop_fields_are_removed_and_no_Forwarded_is_added()
    {
        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers?a=%2F%20b");
        request.Headers.Host = "api.internal.test";
        request.Headers.Connection.Add("x-private-hop");
        request.Headers.Add("x-private-hop", "1");
        request.Headers.Add("Keep-Alive", "timeout=5");
        request.Headers.Add("x-end-to-end", "kept");
        request.Headers.Add("passage-tunnel-encoding", "br");
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        var seen = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("GET /headers?a=%2F%20b\n", seen);
        Assert.Contains("host: api.internal.test\n", seen);
        Assert.Contains("x-end-to-end: kept\n", seen);
        Assert.DoesNotContain("x-private-hop", seen);
        Assert.DoesNotContain("keep-alive", seen);
        Assert.DoesNotContain("passage-tunnel", seen);
        Assert.DoesNotContain("forwarded", seen);
    }

    /// <summary>
    /// The client end's HTTP/1.1 server takes a Host that the .NET HTTP client at the server end will not send (a port past
    /// 65535, a name its URI rules refuse). Setting it there threw, and the application got a bare 500; sent unchecked,
    /// the backend would read two Host fields. It gets 400 with the reason, for a plain request and an upgrade alike.
    /// </summary>
    [Theory]
    [InlineData("app.test:99999", "")]
    [InlineData("a!b", "")]
    [InlineData("[::1]:99999", "")]
    [InlineData("app.test:99999", "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n")]
    public async Task A_Host_the_backend_client_cannot_send_gets_400_with_the_reason(string host, string upgrade)
    {
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort, $"GET /ws HTTP/1.1\r\nHost: {host}\r\n{upgrade}\r\n");
        Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
        // The server end's answer: its field names come through HTTP/2 in lower case.
        Assert.Contains("proxy-status: passage; error=http_request_error; details=\"the Host field cannot be sent to the backend\"\r\n", answer, StringComparison.Ordinal);

        // The tunnel carries on.
        using var client = Pair.CreateHttpClient();
        using var next = await client.GetAsync("/after-host").WaitAsync(Timeouts.Default);
        Assert.Equal("GET /after-host", await next.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// The application's Host reaches the backend, but the link to the server end is one TLS connection whatever the
    /// Hosts: the HTTP client keyed its connections, and chose its TLS server name, by the request's Host, so each new
    /// Host opened a connection of its own that never closed and named that Host in clear text.
    /// </summary>
    [Fact]
    public async Task Requests_for_many_hosts_share_the_one_connection_to_the_server_end_and_each_host_reaches_the_backend()
    {
        using var client = Pair.CreateHttpClient();
        for (var i = 0; i < 5; i++)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
            request.Headers.Host = $"host{i}.internal.test";
            using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
            Assert.Contains($"host: host{i}.internal.test\n", await response.Content.ReadAsStringAsync());
        }
        var port = $":{Pair.TunnelPort:X4} ";
        var established = File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => (f[1] + " ").EndsWith(port, StringComparison.Ordinal) && f[3] == "01");
        Assert.Equal(1, established);
    }

    /// <summary>
    /// The server end reads the fields the two ends exchange only from the client end, never from a backend: a backend
    /// sending them made the server end decompress a plain body into nothing, or change the status.
    /// </summary>
    [Fact]
    public async Task A_backend_cannot_steer_the_tunnel_with_its_own_passage_tunnel_fields()
    {
        using var client = Pair.CreateHttpClient();
        using var response = await client.GetAsync("/steer").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("plain ok", await response.Content.ReadAsStringAsync());
        Assert.DoesNotContain(response.Headers.Concat(response.Content.Headers), h => h.Key.StartsWith("passage-tunnel-", StringComparison.OrdinalIgnoreCase));
    }

    [Fact]
    public async Task Content_fields_named_in_Connection_are_removed_and_TE_asks_for_trailers_only_by_the_member()
    {
        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Post, "/headers") { Content = new StringContent("x") };
        request.Content.Headers.Expires = DateTimeOffset.UnixEpoch;
        request.Headers.Connection.Add("Content-Type");
        request.Headers.Connection.Add("Expires");
        request.Headers.TryAddWithoutValidation("TE", "xtrailersx");
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        var seen = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("POST /headers\n", seen);
        Assert.DoesNotContain("content-type", seen);
        Assert.DoesNotContain("expires", seen);
        Assert.DoesNotContain("te: ", seen);
    }

    /// <summary>
    /// RFC 9110 §10.1.4: an application that accepts trailers has the backend asked for them, over HTTP/1.1 with TE named
    /// in Connection, as the client's HTTP proxy asks; an HTTP/1.0 application, which gets no trailer section, does not.
    /// </summary>
    [Theory]
    [InlineData("HTTP/1.1", true)]
    [InlineData("HTTP/1.0", false)]
    public async Task An_application_that_accepts_trailers_has_the_backend_asked_for_them(string version, bool asked)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Pair.HttpPort)).WaitAsync(Timeouts.Default);
        await Loopback.SendAllAsync(socket, Encoding.ASCII.GetBytes($"GET /headers {version}\r\nHost: backend.test\r\nTE: gzip, trailers\r\nConnection: TE, close\r\n\r\n"));
        var seen = Encoding.Latin1.GetString(await Loopback.ReadToEndAsync(socket));
        Assert.Contains("GET /headers\n", seen);
        if (asked)
        {
            Assert.Contains("\nte: trailers\n", seen);
            Assert.Contains("\nconnection: TE\n", seen);
        }
        else
        {
            Assert.DoesNotContain("\nte: ", seen);
        }
    }

    /// <summary>
    /// An absolute-form request's path and query go on byte for byte, as an origin-form one's do: the path Kestrel parsed
    /// from it has its dot segments removed and its percent-encoding decoded, so <c>/x/../head%65rs</c> reached the backend
    /// as <c>/headers</c> (a backend whose signatures or routes see the raw target saw another request).
    /// </summary>
    [Theory]
    [InlineData("http://backend.test/x/../head%65rs?a=%2F%20b", "/x/../head%65rs?a=%2F%20b")]
    [InlineData("http://backend.test:80/headers", "/headers")]
    public async Task An_absolute_form_target_goes_on_as_written(string target, string expected)
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Pair.HttpPort)).WaitAsync(Timeouts.Default);
        var host = new Uri(target).Authority;
        await Loopback.SendAllAsync(socket, Encoding.ASCII.GetBytes($"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
        var seen = Encoding.Latin1.GetString(await Loopback.ReadToEndAsync(socket).WaitAsync(Timeouts.Default));
        Assert.StartsWith("HTTP/1.1 200 ", seen, StringComparison.Ordinal);
        Assert.Contains($"\nGET {expected}\n", seen);
    }

    [Fact]
    public async Task A_CONNECT_at_the_client_end_is_501_with_a_reason_not_a_502()
    {
        using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Pair.HttpPort)).WaitAsync(Timeouts.Default);
        await Loopback.SendAllAsync(socket, "CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n"u8.ToArray());
        var head = await Passage.Tests.Relay.Connect.ConnectHarness.ReadHeadAsync(socket);
        Assert.StartsWith("HTTP/1.1 501 ", head);
        Assert.Contains("error=http_request_error", head);
    }

    /// <summary>
    /// Proxy credentials are for the proxy the application talks to (RFC 9110 §11.7.2), which the client end is and which
    /// asks for none: they reached the backend in the clear. They stay at the client end, in the head and in a trailer.
    /// </summary>
    [Fact]
    public async Task Proxy_credentials_do_not_reach_the_backend()
    {
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort,
            "GET /headers HTTP/1.1\r\nHost: app.test\r\nProxy-Authorization: Basic c2VjcmV0\r\nX-End-To-End: kept\r\nConnection: close\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 200 ", head, StringComparison.Ordinal);
        Assert.Contains("x-end-to-end: kept\n", head, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0", head, StringComparison.Ordinal);
    }

    /// <summary>
    /// Kestrel takes a request in <c>gzip, chunked</c> and undoes the chunked framing alone: the backend got the body still
    /// gzip-coded, with no field left to say so, and took it for the content. A transfer coding the tunnel does not
    /// undo is answered 501 (RFC 9112 §6.1) with the reason, and the connection closed, as the body was not read.
    /// </summary>
    [Theory]
    [InlineData("gzip, chunked")]
    [InlineData("x-custom, Chunked")]
    public async Task A_request_with_a_transfer_coding_other_than_chunked_gets_501_and_the_connection_closed(string codings)
    {
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort, $"POST /hash HTTP/1.1\r\nHost: app.test\r\nTransfer-Encoding: {codings}\r\n\r\n"
            + "5\r\nhello\r\n0\r\n\r\nGET /after HTTP/1.1\r\nHost: app.test\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 501 ", answer, StringComparison.Ordinal);
        Assert.Contains("Proxy-Status: passage; error=http_request_error; details=\"the request has a transfer coding other than chunked\"\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("POST 5 ", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("GET /after", answer, StringComparison.Ordinal);
    }

    /// <summary>
    /// The HTTP client keeps content fields (Content-Type, Content-Language, Expires, ...) on a request's content: a request
    /// without a body has none at either end, so its content fields were dropped, and a POST of no bytes reached the
    /// backend without its Content-Type. They cross with an empty body, whatever says that it is empty. The empty content
    /// goes with Content-Length: 0, though, which a GET or DELETE that gave no length should not get (RFC 9110 §8.6): such a
    /// request goes on without a length, without chunked framing, and without its content fields, which describe no content.
    /// </summary>
    [Theory]
    [InlineData("POST", "Content-Length: 0\r\n", true)]
    [InlineData("PUT", "", true)]
    [InlineData("GET", "Content-Length: 0\r\n", true)]
    [InlineData("GET", "", false)]
    [InlineData("DELETE", "", false)]
    public async Task A_request_without_a_body_keeps_its_content_fields_but_gets_no_length_it_lacked(string method, string length, bool kept)
    {
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort, $"{method} /headers HTTP/1.1\r\nHost: app.test\r\n{length}"
            + "Content-Type: application/json\r\nContent-Language: en\r\nConnection: close\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        // What the backend received, after the answer's own head.
        var received = answer[(answer.IndexOf("\r\n\r\n", StringComparison.Ordinal) + 4)..];
        Assert.Contains($"{method} /headers\n", received, StringComparison.Ordinal);
        Assert.Equal(kept, received.Contains("content-type: application/json\n", StringComparison.Ordinal));
        Assert.Equal(kept, received.Contains("content-language: en\n", StringComparison.Ordinal));
        Assert.Equal(kept, received.Contains("content-length: 0\n", StringComparison.Ordinal));
        Assert.DoesNotContain("transfer-encoding:", received, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>
    /// The server end's HTTP client cannot send an asterisk-form target: OPTIONS * reached the backend as OPTIONS /, a
    /// question about one resource. It is answered 501 with the reason instead; OPTIONS on a path still goes through.
    /// </summary>
    [Fact]
    public async Task OPTIONS_asterisk_is_501_with_a_reason_and_OPTIONS_on_a_path_is_forwarded()
    {
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort, "OPTIONS * HTTP/1.1\r\nHost: app.test\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 501 ", head, StringComparison.Ordinal);
        Assert.Contains("proxy-status: passage; error=http_request_error; details=\"OPTIONS * (asterisk-form) is not carried to the backend\"", head, StringComparison.OrdinalIgnoreCase);

        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Options, "/hash");
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        Assert.StartsWith("OPTIONS 0 ", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_slow_reader_does_not_stall_the_other_requests()
    {
        using var stalledClient = Pair.CreateHttpClient();
        // Far more than every window on the way: the backend stays blocked writing this one.
        using var stalled = await stalledClient.GetAsync($"/bytes/{HundredMiB}", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        await using var stalledBody = await stalled.Content.ReadAsStreamAsync();
        var first = new byte[1024];
        await stalledBody.ReadExactlyAsync(first).AsTask().WaitAsync(Timeouts.Default);

        using var client = Pair.CreateHttpClient();
        var others = Enumerable.Range(0, 20).Select(async i =>
        {
            using var content = new ByteArrayContent(Encoding.UTF8.GetBytes($"request {i}"));
            using var response = await client.PostAsync("/echo", content);
            return await response.Content.ReadAsStringAsync();
        });
        var answers = await Task.WhenAll(others).WaitAsync(Timeouts.Default);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"request {i}"), answers);

        using var download = await client.GetAsync("/bytes/5000000").WaitAsync(Timeouts.Default);
        Assert.Equal(5_000_000, (await download.Content.ReadAsByteArrayAsync()).Length);
    }

    [Fact]
    public async Task A_WebSocket_echo_works_through_the_tunnel()
    {
        using var socket = new ClientWebSocket();
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{Pair.HttpPort}/ws"), cts.Token);
        foreach (var size in new[] { 5, 70_000, 1_000_000 })
        {
            var message = RandomNumberGenerator.GetBytes(size);
            await socket.SendAsync(message, WebSocketMessageType.Binary, endOfMessage: true, cts.Token);
            var received = new MemoryStream();
            var buffer = new byte[64 * 1024];
            ValueWebSocketReceiveResult result;
            do
            {
                result = await socket.ReceiveAsync(buffer.AsMemory(), cts.Token);
                received.Write(buffer, 0, result.Count);
            }
            while (!result.EndOfMessage);
            Assert.Equal(message, received.ToArray());
        }
        await socket.SendAsync("text frame"u8.ToArray(), WebSocketMessageType.Text, true, cts.Token);
        var back = new byte[64];
        var text = await socket.ReceiveAsync(back.AsMemory(), cts.Token);
        Assert.Equal("text frame", Encoding.UTF8.GetString(back, 0, text.Count));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", cts.Token);
        Assert.Equal(WebSocketCloseStatus.NormalClosure, socket.CloseStatus);
    }

    [Fact]
    public async Task A_refused_WebSocket_upgrade_comes_back_as_the_backends_answer()
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri($"ws://127.0.0.1:{Pair.HttpPort}/not-a-websocket"), cts.Token));
        Assert.Equal(HttpStatusCode.OK, socket.HttpStatusCode);
    }

    [Theory]
    [InlineData("POST")]
    [InlineData("PATCH")]
    public async Task A_request_that_is_not_idempotent_reaches_the_backend_once_even_when_it_closes_without_an_answer(string method)
    {
        // A request first leaves a kept-alive connection in the server end's pool; the HTTP client there would send a
        // request without a body again, on a new connection, when the backend closes that one without answering.
        using var client = Pair.CreateHttpClient();
        using (var first = await client.GetAsync("/before").WaitAsync(Timeouts.Default))
        {
            Assert.Equal("GET /before", await first.Content.ReadAsStringAsync());
        }
        var drops = Volatile.Read(ref Pair.Backend.Drops);
        using var request = new HttpRequestMessage(new HttpMethod(method), "/drop");
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        Assert.Equal(1, Volatile.Read(ref Pair.Backend.Drops) - drops);
    }

    /// <summary>
    /// The link carries an upgrade as extended CONNECT, which has no method, and the server end asks the backend with GET:
    /// a DELETE with Upgrade reached the backend as GET, and the application got the GET's answer. A method other than
    /// GET goes on as itself, its Upgrade ignored.
    /// </summary>
    [Theory]
    [InlineData("DELETE")]
    [InlineData("OPTIONS")]
    public async Task An_upgrade_on_a_method_other_than_GET_reaches_the_backend_with_its_method(string method)
    {
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort,
            $"{method} /headers HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.Contains($"{method} /headers\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("upgrade", answer, StringComparison.OrdinalIgnoreCase);
    }

    [Theory]
    [InlineData(", websocket", "HTTP/1.1 101 ")]
    [InlineData("websocket, h2c", "HTTP/1.1 101 ")]
    [InlineData("websocket/13", "HTTP/1.1 200 ")] // passes on; the backend knows no such version and declines
    [InlineData(",", "HTTP/1.1 400 ")]
    [InlineData("web socket", "HTTP/1.1 400 ")]
    public async Task An_upgrade_takes_the_first_protocol_named_and_one_naming_none_gets_400(string upgrade, string expected)
    {
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort, $"GET /ws HTTP/1.1\r\nHost: app.test\r\nConnection: Upgrade\r\nUpgrade: {upgrade}\r\n"
            + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        Assert.StartsWith(expected, head, StringComparison.Ordinal);
        if (expected.Contains("400", StringComparison.Ordinal))
        {
            Assert.Contains("Proxy-Status: passage; error=http_request_error", head, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\nzz\r\n", "400", "Bad chunk size data.")]
    [InlineData("Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n", "400", "Bad chunk suffix.")]
    public async Task A_request_body_with_broken_framing_is_answered_with_its_status_and_reason_and_the_connection_closed(string bodyAndFraming, string status, string reason)
    {
        // What follows a body whose end is unknown is not a request: the GET behind it must not be answered.
        var answer = await RawHttp1.SendHeadAsync(Pair.HttpPort, $"POST /hash HTTP/1.1\r\nHost: app.test\r\n{bodyAndFraming}"
            + "GET /before HTTP/1.1\r\nHost: app.test\r\n\r\n", readToEnd: true);
        Assert.StartsWith($"HTTP/1.1 {status} ", answer, StringComparison.Ordinal);
        Assert.Contains($"Proxy-Status: passage; error=http_request_error; details=\"{reason}\"\r\n", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close\r\n", answer, StringComparison.Ordinal);
        Assert.DoesNotContain("GET /before", answer, StringComparison.Ordinal);

        // The tunnel carries on.
        using var client = Pair.CreateHttpClient();
        using var next = await client.GetAsync("/before").WaitAsync(Timeouts.Default);
        Assert.Equal("GET /before", await next.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Field_values_beyond_ASCII_cross_byte_for_byte_both_ways()
    {
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort, "GET /headers HTTP/1.1\r\nHost: app.test\r\nX-Name: caf\u00e9\r\nConnection: close\r\n\r\n", readToEnd: true);
        Assert.StartsWith("HTTP/1.1 200 ", head, StringComparison.Ordinal);
        // The backend lists what arrived, as UTF-8 text: the one octet 0xE9 came as the one character U+00E9.
        Assert.Contains("x-name: caf\u00c3\u00a9\n", head, StringComparison.Ordinal);
    }

    /// <summary>
    /// A head the client end takes reaches the backend whole: the server end's bounds lie above the client end's, as HTTP/2
    /// counts 32 bytes more per field and the client end adds its own. Under Kestrel's default bounds at the server end,
    /// 90 fields of 340 bytes (31 KiB as HTTP/1.1, 33 KiB as HTTP/2 counts) got 502 connection_terminated, and 99 small
    /// fields (with Host, the 100 the client end takes) a bare 431 of the server end's Kestrel, passed on as the backend's.
    /// </summary>
    [Theory]
    [InlineData(90, 340)]
    [InlineData(99, 5)]
    public async Task A_head_the_client_end_takes_reaches_the_backend_whole(int count, int size)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
        for (var i = 0; i < count; i++)
        {
            request.Headers.TryAddWithoutValidation($"X-F{i:D2}", FieldValue(i, size));
        }
        using var client = Pair.CreateHttpClient();
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var seen = await response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default);
        Assert.Contains($"x-f{count - 1:D2}: {FieldValue(count - 1, size)}\n", seen, StringComparison.Ordinal);
    }

    private static string FieldValue(int field, int size) => new((char)('a' + field % 26), size);
}
