using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Upgraded connections (HTTP/1.1 Upgrade) through real tunnel ends to a backend on a raw socket: the application's
/// half-close reaches the backend (from the server end on), and a connection idle past <c>system.idleTimeout</c> is closed at every hop.
/// </summary>
public sealed class TunnelUpgradeTests
{
    private const string Upgrade = "Connection: Upgrade\r\nUpgrade: x-test\r\n";

    /// <summary>
    /// The client end's side of an upgrade ends its sending (as it does when the application half-closes): the server end
    /// must pass that end to the backend as a half-close, so that a backend that reads to the end before answering
    /// answers, and its answer and its own end must come back. The .NET HTTP/2 client cannot end only its sending side of
    /// the link's stream, so the end did not cross: the backend waited for more. Driven through a real client end session
    /// (the client end's Kestrel cannot be half-closed by an application: see README).
    /// </summary>
    [Fact]
    public async Task The_client_ends_half_close_reaches_the_backend_and_the_backends_answer_and_end_come_back()
    {
        await using var backend = new UpgradeBackend();
        await using var ends = await InProcessEnds.StartAsync(backend.Port);

        using var request = new HttpRequestMessage(HttpMethod.Connect, ends.Origin + "/echo-at-end");
        request.Headers.Protocol = "x-test";
        request.Headers.TryAddWithoutValidation(TunnelHeaders.Framing, TunnelHeaders.Chunked);
        using var cts = new CancellationTokenSource(Timeouts.Default);
        using var response = await ends.SendAsync(request, cts.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(TunnelHeaders.Chunked, Assert.Single(response.Headers.GetValues(TunnelHeaders.Framing)));
        await using var link = ChunkFramedStream.FramingWrites(await response.Content.ReadAsStreamAsync(cts.Token));
        await link.WriteAsync("hello, "u8.ToArray(), cts.Token);
        await link.WriteAsync("backend"u8.ToArray(), cts.Token);
        await link.CompleteWritesAsync(cts.Token);

        var answer = new MemoryStream();
        await link.CopyToAsync(answer, cts.Token);
        Assert.Equal("got: hello, backend", Encoding.ASCII.GetString(answer.ToArray()));
    }

    /// <summary>
    /// Each upgrade has a backend connection of its own, outside the pooled client and its cap: the server end opened as
    /// many as it was asked for, past what its open-file limit leaves for backend connections. Upgrades now count with the
    /// pooled connections against that share (here 2): one more upgrade, or a request needing a new connection, gets 503
    /// <c>connection_limit_reached</c>; a closed upgrade, and one the backend declined (whose connection the upgrade's own
    /// client kept), give their slot back.
    /// </summary>
    [Fact]
    public async Task Upgrades_count_against_the_backend_connection_cap_and_give_their_slot_back()
    {
        await using var backend = new UpgradeBackend();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, backendConnectionLimit: 2);
        using var cts = new CancellationTokenSource(Timeouts.Default);

        // Declined upgrades, more than the cap: each answer is passed on, and its connection closed with its client.
        for (var i = 0; i < 3; i++)
        {
            using var declined = await ends.UpgradeAsync("/refuse", cts.Token);
            Assert.Equal(HttpStatusCode.NotFound, declined.StatusCode);
        }

        using var first = await ends.UpgradeAsync("/hold", cts.Token);
        using var second = await ends.UpgradeAsync("/hold", cts.Token);
        Assert.Equal(HttpStatusCode.OK, first.StatusCode);
        Assert.Equal(HttpStatusCode.OK, second.StatusCode);

        using (var third = await ends.UpgradeAsync("/hold", cts.Token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, third.StatusCode);
            Assert.Contains("error=connection_limit_reached", third.Headers.GetValues("Proxy-Status").Single(), StringComparison.Ordinal);
        }
        using (var plain = await ends.SendAsync(new HttpRequestMessage(HttpMethod.Post, ends.Origin + "/plain") { Content = new StringContent("x") }, cts.Token))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, plain.StatusCode);
            Assert.Contains("error=connection_limit_reached", plain.Headers.GetValues("Proxy-Status").Single(), StringComparison.Ordinal);
        }

        // The first upgrade ends: its slot comes back once the server end has closed its backend connection.
        first.Dispose();
        HttpStatusCode status;
        do
        {
            using var again = await ends.UpgradeAsync("/hold", cts.Token);
            status = again.StatusCode;
        }
        while (status == HttpStatusCode.ServiceUnavailable);
        Assert.Equal(HttpStatusCode.OK, status);
    }

    /// <summary>An upgraded connection that moves no byte for <c>system.idleTimeout</c> is closed, the application's and the backend's connections both.</summary>
    [Fact]
    public async Task An_upgraded_connection_idle_past_the_idle_timeout_is_closed_at_both_sides()
    {
        await using var backend = new UpgradeBackend();
        await using var pair = await TunnelPair.StartAsync(system: "\"idleTimeout\": \"1s\"", backendPort: backend.Port);
        using var application = await OpenAsync(pair.HttpPort, "/quiet");

        Assert.Equal("", await ReadToEndAsync(application, resetIsEnd: true));
        await backend.QuietEnded.WaitAsync(Timeouts.Default);
        var ended = await Task.WhenAny(
            pair.Client.WaitForLineAsync(l => l.Contains("protocol upgrade (x-test) ended: IdleTimeout", StringComparison.Ordinal)),
            pair.Server.WaitForLineAsync(l => l.Contains("protocol upgrade (x-test) ended: IdleTimeout", StringComparison.Ordinal)));
        await ended;
    }

    /// <summary>
    /// An application that closes its upgraded connection: Kestrel takes its end of sending for the connection's close and
    /// drops what is written after it, so the backend's bytes can reach no one. The tunnel waited for the backend's end
    /// all the same, holding the link's stream and the backend's connection until system.idleTimeout (5 min), and for good
    /// while the backend kept sending. Once the application's end has reached the backend, the tunnel ends.
    /// </summary>
    [Fact]
    public async Task An_application_that_closes_its_upgraded_connection_no_longer_holds_the_backends()
    {
        await using var backend = new UpgradeBackend();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true);
        using (await OpenAsync(ends.HttpPort, "/linger"))
        {
        }

        // The backend, which keeps sending after the application's end, finds its connection closed.
        await backend.LingerEnded.WaitAsync(Timeouts.Default);
    }

    /// <summary>Opens an upgraded connection through the client end: returns once its 101 has been read.</summary>
    private static async Task<Socket> OpenAsync(int port, string path)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        await socket.SendAsync(Encoding.ASCII.GetBytes($"GET {path} HTTP/1.1\r\nHost: app.test\r\n{Upgrade}\r\n"), cts.Token);
        var head = new StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            Assert.Equal(1, await socket.ReceiveAsync(one, cts.Token));
            head.Append((char)one[0]);
        }
        Assert.StartsWith("HTTP/1.1 101 ", head.ToString(), StringComparison.Ordinal);
        return socket;
    }

    private static async Task<string> ReadToEndAsync(Socket socket, bool resetIsEnd = false)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var text = new StringBuilder();
        var buffer = new byte[4096];
        try
        {
            int n;
            while ((n = await socket.ReceiveAsync(buffer, cts.Token)) > 0)
            {
                text.Append(Encoding.ASCII.GetString(buffer, 0, n));
            }
        }
        catch (SocketException e) when (resetIsEnd && e.SocketErrorCode == SocketError.ConnectionReset)
        {
        }
        return text.ToString();
    }

    /// <summary>
    /// Switches every request to <c>x-test</c>. On <c>/echo-at-end</c> it reads to the end of the application's bytes, then
    /// answers <c>got: </c> and them, and ends its sending side; on <c>/quiet</c> it sends nothing and notes when the
    /// connection ends; on <c>/linger</c>, after the end of the application's bytes, it sends a byte every 100 ms until the
    /// connection is closed. <c>/refuse</c> is answered 404 instead, the connection kept open.
    /// </summary>
    private sealed class UpgradeBackend : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly TaskCompletionSource _quietEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _lingerEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _accepting;

        public UpgradeBackend()
        {
            _listener.Start();
            _accepting = AcceptAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        /// <summary>Completes when a <c>/quiet</c> connection has been closed by the other side.</summary>
        public Task QuietEnded => _quietEnded.Task;

        /// <summary>Completes when a <c>/linger</c> connection has been closed by the other side.</summary>
        public Task LingerEnded => _lingerEnded.Task;

        private async Task AcceptAsync()
        {
            var served = new List<Task>();
            await Loopback.AcceptEachAsync(_listener.Server, socket => served.Add(ServeAsync(socket)));
            await Task.WhenAll(served);
        }

        private async Task ServeAsync(Socket socket)
        {
            using (socket)
            {
                var path = "/";
                try
                {
                    using var reader = new Http1Reader(new NetworkStream(socket, ownsSocket: false));
                    path = (await reader.ReadLineAsync(8192, CancellationToken.None) ?? "").Split(' ') is [_, var target, ..] ? target : "/";
                    while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
                    {
                    }
                    await socket.SendAsync(Encoding.ASCII.GetBytes(path == "/refuse"
                        ? "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
                        : "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-test\r\n\r\n"));
                    var received = new MemoryStream();
                    var buffer = new byte[4096];
                    int n;
                    while ((n = await reader.ReadAsync(buffer, CancellationToken.None)) > 0)
                    {
                        received.Write(buffer, 0, n);
                    }
                    if (path == "/echo-at-end")
                    {
                        await socket.SendAsync(Encoding.ASCII.GetBytes("got: " + Encoding.ASCII.GetString(received.ToArray())));
                        socket.Shutdown(SocketShutdown.Send);
                    }
                    while (path == "/linger")
                    {
                        await socket.SendAsync("."u8.ToArray());
                        await Task.Delay(100);
                    }
                }
                catch (Exception e) when (e is IOException or SocketException)
                {
                    // Reset: ended all the same.
                }
                if (path == "/quiet")
                {
                    _quietEnded.TrySetResult();
                }
                if (path == "/linger")
                {
                    _lingerEnded.TrySetResult();
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            await _accepting.WaitAsync(Timeouts.Default);
        }
    }
}
