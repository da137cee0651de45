using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Client;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>The first line the local HTTP proxy reads, judged as soon as it is whole (RFC 9112 §3).</summary>
public sealed class RequestLineTests
{
    /// <summary>
    /// A first line without the shape of a request line (method SP request-target SP HTTP-version), such as the banner
    /// an SSH client sends before it waits for the server's, is answered 400 as soon as its line end comes, its sender's
    /// side left open: it used to wait for the head's end until the handshake timeout, its sender waiting as long, and
    /// then hear a 408. The handshake timeout here is an hour: only the line itself can end the wait.
    /// </summary>
    [Theory]
    [InlineData("SSH-2.0-OpenSSH_9.2p1\r\n", "malformed request line")]
    [InlineData("\r\nhello\r\n", "malformed request line")]
    [InlineData("GET /\r\n", "malformed request line")]
    [InlineData("GET / HTTP/1.1 x\r\n", "malformed request line")]
    [InlineData("CONNECT origin.test:443 SSH/1.1\r\n", "HTTP version is malformed")]
    [InlineData("SSH-2.0-OpenSSH_9.2p1\r", "malformed request line")]
    public async Task A_first_line_of_another_shape_is_answered_400_as_soon_as_it_is_whole(string sent, string detail)
    {
        await using var proxy = await StartAsync();
        using var app = await proxy.ConnectAsync();
        await Loopback.SendAllAsync(app, Encoding.ASCII.GetBytes(sent));
        var answer = Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
        Assert.StartsWith("HTTP/1.1 400 ", answer);
        Assert.Contains($"\r\nProxy-Status: passage; error=http_request_error; details=\"{detail}\"\r\n", answer);
    }

    /// <summary>
    /// A valid head sent one byte at a time is read whole, its request line judged once and let through: with no relay
    /// reachable, its CONNECT is answered 503, which only a head read to its end and taken gets.
    /// </summary>
    [Theory]
    [InlineData("CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n")]
    [InlineData("\r\nGET http://origin.test/ HTTP/1.0\r\nAccept: */*\r\n\r\n")]
    public async Task A_valid_head_sent_byte_by_byte_is_read_to_its_end(string sent)
    {
        await using var proxy = await StartAsync();
        using var app = await proxy.ConnectAsync();
        var sending = PieceByPiece.WriteAsync(app, sent, 1, close: false);
        var answer = Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
        await sending.WaitAsync(Timeouts.Default);
        Assert.StartsWith("HTTP/1.1 503 ", answer);
        Assert.Contains("error=destination_unavailable", answer);
    }

    private static async Task<Proxy> StartAsync()
    {
        var identity = NodeIdentity.Create();
        var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", Loopback.ClosedPort())] });
        var proxy = LocalProxy.Start(
            client,
            new LocalProxyOptions { SocksEndpoints = [], HttpEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)], HandshakeTimeout = TimeSpan.FromHours(1) },
            metrics: new RelayMetrics());
        return new Proxy(identity, client, proxy);
    }

    private sealed class Proxy(NodeIdentity identity, PassageClient client, LocalProxy proxy) : IAsyncDisposable
    {
        public async Task<Socket> ConnectAsync()
        {
            var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await app.ConnectAsync(proxy.HttpEndpoints[0]).WaitAsync(Timeouts.Default);
            return app;
        }

        public async ValueTask DisposeAsync()
        {
            await proxy.DisposeAsync();
            await client.DisposeAsync();
            identity.Dispose();
        }
    }
}
