using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// The server end's own HTTP/1.1 exchange for requests with trailers, against a backend on a real loopback socket
/// that answers with scripted bytes: what goes out, and every shape of answer, good and bad.
/// </summary>
public sealed class ChunkedRequestHandlerTests
{
    [Fact]
    public async Task Sends_the_head_the_chunked_body_and_the_trailers_and_reads_a_length_delimited_answer()
    {
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nx-a: 1\r\n\r\nhello");
        using var response = await SendAsync(backend.Port, "ab", [new("x-digest", "d1"), new("Host", "not-in-trailers")]);

        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("text/plain", response.Content.Headers.ContentType?.ToString());
        Assert.Equal("1", Assert.Single(response.Headers.GetValues("x-a")));
        Assert.Equal("hello", await response.Content.ReadAsStringAsync());
        var request = await backend.Request;
        Assert.Equal(
            "POST /path?q=%2F HTTP/1.1\r\nHost: app.test\r\nTrailer: x-digest\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
            "2\r\nab\r\n0\r\nx-digest: d1\r\n\r\n",
            request);
    }

    /// <summary>
    /// The TE: trailers a request was given for an application that accepts trailers (TE is hop-by-hop, so only this one
    /// value) goes on, named in Connection (RFC 9110 §10.1.4).
    /// </summary>
    [Fact]
    public async Task A_request_that_accepts_trailers_asks_the_backend_for_them()
    {
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        using var response = await SendAsync(backend.Port, "ab", [], acceptsTrailers: true);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(
            "POST /path?q=%2F HTTP/1.1\r\nHost: app.test\r\nTrailer: x-digest\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
            + "TE: trailers\r\nConnection: TE, close\r\n\r\n2\r\nab\r\n0\r\n\r\n",
            await backend.Request);
    }

    [Fact]
    public async Task A_chunked_answer_brings_its_trailers_along()
    {
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 99\r\n\r\n3\r\nabc\r\n0\r\nx-sum: 42\r\n\r\n");
        using var response = await SendAsync(backend.Port, "x", []);
        Assert.Null(response.Content.Headers.ContentLength);
        Assert.Equal("abc", await response.Content.ReadAsStringAsync());
        Assert.Equal("42", Assert.Single(response.TrailingHeaders.GetValues("x-sum")));
    }

    [Fact]
    public async Task An_answer_delimited_by_the_close_reads_to_the_end()
    {
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 200 OK\r\n\r\nuntil the end");
        using var response = await SendAsync(backend.Port, "x", []);
        Assert.Equal("until the end", await response.Content.ReadAsStringAsync());
    }

    [Theory]
    [InlineData("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n")]
    [InlineData("POST", "HTTP/1.1 204 No Content\r\nContent-Length: 50\r\n\r\n")]
    [InlineData("POST", "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n")]
    public async Task Answers_without_content_have_none_whatever_their_fields_say(string method, string answer)
    {
        await using var backend = await ScriptedBackend.StartAsync(answer);
        using var response = await SendAsync(backend.Port, "x", [], new HttpMethod(method));
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    [Theory]
    [InlineData("HTTP/1.1 2000 OK\r\n\r\n")]
    [InlineData("HTTP/2 200 OK\r\n\r\n")]
    [InlineData("ICY 200 OK\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nbad field\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\n folded: v\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n")]
    public async Task A_malformed_answer_head_is_an_invalid_response(string answer)
    {
        await using var backend = await ScriptedBackend.StartAsync(answer);
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(backend.Port, "x", []));
        Assert.Equal(HttpRequestError.InvalidResponse, error.HttpRequestError);
        Assert.Equal("http_protocol_error", TunnelFailure.From(error).ErrorType);
    }

    /// <summary>
    /// Interim answers are skipped, up to <see cref="Passage.Http.InterimAnswers.Max"/>; one more is an invalid response
    /// (each one read would start the backend's waiting clock again, so a backend sending them without end held the request).
    /// </summary>
    [Theory]
    [InlineData(32, true)]
    [InlineData(33, false)]
    public async Task Interim_answers_are_skipped_up_to_the_bound_and_past_it_are_an_invalid_response(int count, bool served)
    {
        var answer = string.Concat(Enumerable.Repeat("HTTP/1.1 102 Processing\r\n\r\n", count)) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        await using var backend = await ScriptedBackend.StartAsync(answer);
        if (served)
        {
            using var response = await SendAsync(backend.Port, "x", []);
            Assert.Equal("ok", await response.Content.ReadAsStringAsync());
            return;
        }
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(backend.Port, "x", []));
        Assert.Equal(HttpRequestError.InvalidResponse, error.HttpRequestError);
        Assert.Contains("more than 32 interim (1xx) answers", error.Message);
        Assert.Equal("http_protocol_error", TunnelFailure.From(error).ErrorType);
    }

    [Theory]
    [InlineData("")]
    [InlineData("HTTP/1.1 200 OK\r\nx-a: 1\r\n")]
    public async Task A_backend_that_closes_before_answering_ended_the_response(string answer)
    {
        await using var backend = await ScriptedBackend.StartAsync(answer);
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(backend.Port, "x", []));
        Assert.Equal(HttpRequestError.ResponseEnded, error.HttpRequestError);
    }

    [Theory]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nshort\r\n")]
    public async Task A_body_cut_short_is_an_error_not_a_shorter_body(string answer)
    {
        await using var backend = await ScriptedBackend.StartAsync(answer);
        using var response = await SendAsync(backend.Port, "x", []);
        await using var body = await response.Content.ReadAsStreamAsync();
        await Assert.ThrowsAnyAsync<IOException>(() => body.CopyToAsync(Stream.Null));
    }

    [Fact]
    public async Task A_backend_that_answers_early_and_resets_still_has_its_answer_passed_on()
    {
        // It refuses the upload from the head alone and closes with the body unread (a reset), so sending fails.
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 413 Content Too Large\r\nContent-Length: 5\r\n\r\nlarge", readBody: false);
        using var response = await SendAsync(backend.Port, new string('x', 16 * 1024 * 1024), []);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, response.StatusCode);
        Assert.Equal("large", await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// The request body's copy reads the request's own body, so the exchange ends only once the copy has: it was left
    /// running, still reading the body (and timing it) after the request had ended. Here the backend answers from the head
    /// alone while the body is still coming, in a read that takes no notice of cancellation.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_exchange_ends_only_once_the_body_copy_has_ended(bool buffered)
    {
        await using var backend = await ScriptedBackend.StartAsync("HTTP/1.1 413 Content Too Large\r\nContent-Length: 5\r\n\r\nlarge", readBody: false);
        var source = new HeldStream();
        var content = new StreamingContent(source, compress: false, CancellationToken.None, () => []);
        var response = await SendAsync(backend.Port, content);
        // Read as the forwarder reads it, or buffered, which disposes the body once read.
        var answer = new MemoryStream();
        if (buffered)
        {
            await response.Content.LoadIntoBufferAsync();
        }
        await (await response.Content.ReadAsStreamAsync()).CopyToAsync(answer);
        Assert.Equal("large", Encoding.ASCII.GetString(answer.ToArray()));
        await source.Reading.WaitAsync(Timeouts.Default);

        var ending = ExchangeForwarder.EndAsync(response);
        Assert.False(ending.IsCompleted);
        Assert.Null(content.Result);

        source.Release();
        await ending.WaitAsync(Timeouts.Default);
        Assert.NotNull(content.Result);
    }

    /// <summary>A backend that answers as it reads (an echo) gets the body piece by piece while its answer comes back: full duplex, no deadlock.</summary>
    [Fact]
    public async Task A_backend_that_answers_as_it_reads_gets_the_body_while_its_answer_comes_back()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var echoing = EchoAsync(listener);
        var pipe = new System.IO.Pipelines.Pipe();
        var content = new StreamingContent(pipe.Reader.AsStream(), compress: false, CancellationToken.None, () => [new("x-digest", "d1")]);
        var response = await SendAsync(((IPEndPoint)listener.LocalEndpoint).Port, content);
        var body = await response.Content.ReadAsStreamAsync();
        foreach (var piece in new[] { "one", "two" })
        {
            await pipe.Writer.WriteAsync(Encoding.ASCII.GetBytes(piece));
            var echoed = new byte[piece.Length];
            await body.ReadExactlyAsync(echoed).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal(piece, Encoding.ASCII.GetString(echoed));
        }
        await pipe.Writer.CompleteAsync();
        Assert.Equal(0, await body.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal("d1", Assert.Single(response.TrailingHeaders.GetValues("x-digest")));

        await ExchangeForwarder.EndAsync(response).WaitAsync(Timeouts.Default);
        Assert.Equal(BodyCopyResult.Completed, content.Result);
        await echoing.WaitAsync(Timeouts.Default);
    }

    /// <summary>Answers one request at once with a chunked body that echoes each piece of the request body as it comes, its trailers as the answer's.</summary>
    private static async Task EchoAsync(TcpListener listener)
    {
        using var socket = await listener.AcceptSocketAsync();
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        using var reader = new Http1Reader(stream);
        while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
        {
        }
        await stream.WriteAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"));
        var body = new ChunkedReadStream(reader);
        var buffer = new byte[1024];
        int read;
        while ((read = await body.ReadAsync(buffer)) > 0)
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{read:x}\r\n"));
            await stream.WriteAsync(buffer.AsMemory(0, read));
            await stream.WriteAsync("\r\n"u8.ToArray());
        }
        var trailers = string.Concat(body.Trailers.Select(t => $"{t.Key}: {t.Value}\r\n"));
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"0\r\n{trailers}\r\n"));
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>A request body whose next piece is slow to come: a read waits, whatever its token says, until <see cref="Release"/> ends the body.</summary>
    private sealed class HeldStream : Passage.Transport.ReadOnlyStream
    {
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once a read waits.</summary>
        public Task Reading => _reading.Task;

        public void Release() => _released.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _reading.TrySetResult();
            await _released.Task;
            return 0;
        }
    }

    [Fact]
    public async Task A_refused_connection_is_a_connection_error()
    {
        var port = TunnelPair.FreePort();
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => SendAsync(port, "x", []));
        Assert.Equal(HttpRequestError.ConnectionError, error.HttpRequestError);
        Assert.Equal("connection_refused", TunnelFailure.From(error).ErrorType);
    }

    private static Task<HttpResponseMessage> SendAsync(int port, string body, KeyValuePair<string, string>[] trailers, HttpMethod? method = null, bool acceptsTrailers = false) =>
        SendAsync(port, new StreamingContent(new MemoryStream(Encoding.ASCII.GetBytes(body)), compress: false, CancellationToken.None, () => trailers), method, acceptsTrailers);

    private static async Task<HttpResponseMessage> SendAsync(int port, StreamingContent content, HttpMethod? method = null, bool acceptsTrailers = false)
    {
        using var invoker = new HttpMessageInvoker(new ChunkedRequestHandler(Timeouts.Default, noDelay: true, new BackendConnections(null)), disposeHandler: true);
        var request = new HttpRequestMessage(method ?? HttpMethod.Post, new Uri($"http://127.0.0.1:{port}/path?q=%2F"))
        {
            Content = content,
        };
        request.Headers.Host = "app.test";
        request.Headers.TryAddWithoutValidation("Trailer", "x-digest");
        request.Headers.TryAddWithoutValidation("Connection", "keep-alive");
        if (acceptsTrailers)
        {
            // As MessageCopy.CreateRequest asks for them.
            request.Headers.TryAddWithoutValidation("TE", "trailers");
            request.Headers.Connection.Add("TE");
        }
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "text/plain");
        return await invoker.SendAsync(request, CancellationToken.None).WaitAsync(Timeouts.Default);
    }

    /// <summary>Accepts one connection, reads one chunked request, answers with fixed bytes and closes.</summary>
    private sealed class ScriptedBackend : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly Task<string> _request;

        private ScriptedBackend(TcpListener listener, string answer, bool readBody)
        {
            _listener = listener;
            _request = ServeAsync(answer, readBody);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>The request exactly as it arrived.</summary>
        public Task<string> Request => _request;

        /// <param name="answer">The bytes answered.</param>
        /// <param name="readBody">False to answer after the head and close with the body unread (which resets the connection).</param>
        public static Task<ScriptedBackend> StartAsync(string answer, bool readBody = true)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            return Task.FromResult(new ScriptedBackend(listener, answer, readBody));
        }

        private async Task<string> ServeAsync(string answer, bool readBody)
        {
            using var socket = await _listener.AcceptSocketAsync();
            var seen = new ReadRecorder(new NetworkStream(socket, ownsSocket: false));
            using (var reader = new Http1Reader(seen))
            {
                while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
                {
                }
                if (!readBody)
                {
                    await socket.SendAsync(Encoding.ASCII.GetBytes(answer));
                    socket.Close(0);
                    return Encoding.ASCII.GetString(seen.Seen.ToArray());
                }
                await new ChunkedReadStream(reader).CopyToAsync(Stream.Null);
            }
            await socket.SendAsync(Encoding.ASCII.GetBytes(answer));
            socket.Shutdown(SocketShutdown.Send);
            return Encoding.ASCII.GetString(seen.Seen.ToArray());
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _request.WaitAsync(Timeouts.Default);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
            {
                // The handler under test gave up on the exchange; what the backend saw does not matter then.
            }
        }
    }

    /// <summary>Keeps a copy of what was read through it.</summary>
    private sealed class ReadRecorder(Stream inner) : Passage.Transport.ReadOnlyStream
    {
        public MemoryStream Seen { get; } = new();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = await inner.ReadAsync(buffer, cancellationToken);
            Seen.Write(buffer.Span[..n]);
            return n;
        }
    }
}
