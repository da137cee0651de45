using System.Net;
using System.Net.Sockets;
using Passage.Relay;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Relay.Connect;

/// <summary>HTTP/2 with prior knowledge (RFC 9113 §3.3) on the plain endpoint, beside HTTP/1.1.</summary>
public sealed class ConnectRelayPlainHttp2Tests
{
    [Fact]
    public async Task HttpClient_with_prior_knowledge_opens_extended_connect_tunnels_on_the_plain_endpoint()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        using var client = PriorKnowledgeClient(relay.PlainPort, new SocketsHttpHandler());
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
    public async Task HttpClient_sends_a_request_that_came_while_the_relay_drained_again_on_a_new_connection()
    {
        // A client may send a request on a connection whose GOAWAY (the relay's stop) it has not read yet. It started a
        // tunnel that the drain deadline would cut; reset with REFUSED_STREAM (RFC 9113 §8.7), it is sent again, by
        // HttpClient itself, on a new connection: here to a second relay, as behind a load balancer. The client's reads
        // on its first connection are held so that it sends the request before it sees the GOAWAY.
        await using var echo = new EchoServer();
        await using var draining = await ConnectHarness.StartAsync(limits: new RelayLimits { DrainTimeout = TimeSpan.FromMinutes(5) });
        await using var other = await ConnectHarness.StartAsync();
        var connections = new List<HeldReads>();
        using var client = PriorKnowledgeClient(draining.PlainPort, new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                int port;
                lock (connections)
                {
                    port = connections.Count == 0 ? draining.PlainPort : other.PlainPort;
                }
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
                var connection = new HeldReads(new NetworkStream(socket, ownsSocket: true));
                lock (connections)
                {
                    connections.Add(connection);
                }
                return connection;
            },
        });
        // A tunnel keeps the first connection open through the drain.
        using var before = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var open = await client.SendAsync(before, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, open.StatusCode);
        var first = Assert.Single(connections);
        first.Hold();
        var stopping = draining.Relay.StopAsync();

        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        var sending = client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        await Timeouts.WaitUntilAsync(
            () => draining.Counter("passage.relay.connections.refused/proxy_shutting_down") == 1,
            () => $"{draining.Total("passage.relay.tunnels.opened")} tunnels opened on the draining relay");
        first.Release();

        using var response = await sending.WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(2, connections.Count);
        await using (var tunnel = await response.Content.ReadAsStreamAsync())
        {
            await tunnel.WriteAsync("again"u8.ToArray());
            await tunnel.FlushAsync();
            var back = new byte[5];
            await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("again"u8.ToArray(), back);
        }
        Assert.Equal(1, draining.Total("passage.relay.tunnels.opened"));
        Assert.Equal(1, other.Total("passage.relay.tunnels.opened"));

        // The first tunnel's end lets the drain finish.
        (await open.Content.ReadAsStreamAsync()).Dispose();
        await stopping.WaitAsync(Timeouts.Default);
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

    /// <summary>An HttpClient speaking HTTP/2 with prior knowledge to the plain endpoint on <paramref name="port"/>.</summary>
    private static HttpClient PriorKnowledgeClient(int port, SocketsHttpHandler handler) => new(handler)
    {
        BaseAddress = new Uri($"http://127.0.0.1:{port}"),
        DefaultRequestVersion = HttpVersion.Version20,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        Timeout = Timeouts.Default,
    };

    /// <summary>A connection whose reads can be held: what arrives meanwhile is passed on once they are released.</summary>
    private sealed class HeldReads(Stream inner) : DelegatingStream(inner)
    {
        private volatile TaskCompletionSource _gate = Open();

        public void Hold() => _gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await base.ReadAsync(buffer, cancellationToken);
            await _gate.Task.WaitAsync(cancellationToken);
            return read;
        }

        private static TaskCompletionSource Open()
        {
            var open = new TaskCompletionSource();
            open.SetResult();
            return open;
        }
    }
}
