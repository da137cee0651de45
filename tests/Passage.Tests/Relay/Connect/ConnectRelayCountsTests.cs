using System.Net;
using System.Net.Sockets;
using System.Net.Security;
using System.Text;
using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// The CONNECT front door's counters add up whatever clients do: every accepted connection is counted once, as
/// refused or as closed, and every tunnel counted opened is counted closed; an HTTP/2 connection's requests are counted
/// apart from it (<c>connect_h2</c>).
/// </summary>
public sealed class ConnectRelayCountsTests
{
    [Fact]
    public async Task Every_accepted_connection_ends_counted_once_as_refused_or_closed_whatever_the_client_does()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var connect = Encoding.ASCII.GetBytes($"CONNECT 127.0.0.1:{echo.Port} HTTP/1.1\r\nHost: 127.0.0.1:{echo.Port}\r\n\r\n");
        var accepted = 0;

        // Tunnels that run and end.
        for (var i = 0; i < 5; i++, accepted++)
        {
            var (socket, head) = await ConnectHarness.RequestTunnelAsync(relay.PlainPort, $"127.0.0.1:{echo.Port}");
            using var _ = socket;
            Assert.StartsWith("HTTP/1.1 200", head);
            await Loopback.SendAllAsync(socket, "ping"u8.ToArray());
            socket.Shutdown(SocketShutdown.Send);
            Assert.Equal("ping", Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(socket)));
        }
        // Clients that leave before a whole head: half of one, or nothing.
        for (var i = 0; i < 10; i++, accepted++)
        {
            using var socket = await relay.ConnectPlainAsync();
            if (i % 2 == 0)
            {
                await Loopback.SendAllAsync(socket, connect.AsMemory(0, 20));
            }
            socket.Shutdown(SocketShutdown.Send);
            Assert.True(await Loopback.IsClosedByPeerAsync(socket));
        }
        // Clients that send a whole head and reset at once: the 200 may or may not go out.
        for (var i = 0; i < 10; i++, accepted++)
        {
            var socket = await relay.ConnectPlainAsync();
            await Loopback.SendAllAsync(socket, connect);
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        // Refused with an answer.
        for (var i = 0; i < 3; i++, accepted++)
        {
            var (status, _, socket) = await relay.SendHeadAsync("CONNECT nowhere HTTP/1.1\r\n\r\n");
            socket.Dispose();
            Assert.Equal(400, status);
        }

        string Counts() =>
            $"accepted {relay.Total("passage.relay.connections.accepted")}, refused {relay.Total("passage.relay.connections.refused")}, "
            + $"closed {relay.Total("passage.relay.connections.closed")}, open {relay.Counter("passage.relay.connections.open")}, "
            + $"tunnels opened {relay.Total("passage.relay.tunnels.opened")}, tunnels open {relay.Counter("passage.relay.tunnels.open")}";
        await Timeouts.WaitUntilAsync(
            () => relay.Counter("passage.relay.connections.open") == 0 && relay.Counter("passage.relay.tunnels.open") == 0
                && relay.Total("passage.relay.connections.refused") + relay.Total("passage.relay.connections.closed") == accepted,
            Counts);
        Assert.Equal(accepted, relay.Total("passage.relay.connections.accepted"));
        Assert.Equal(relay.Total("passage.relay.tunnels.opened"), relay.Total("passage.relay.connections.closed"));
        Assert.True(relay.Counter("passage.relay.connections.closed/completed") >= 5, Counts());
        Assert.True(relay.Counter("passage.relay.connections.refused/client_closed") >= 10, Counts());
        Assert.Equal(3, relay.Counter("passage.relay.connections.refused/http_request_error"));
        // The plain listener's connections are counted under the same front door as what becomes of them.
        Assert.Equal(["connect"], relay.FrontDoors);
    }

    [Fact]
    public async Task Every_accepted_http2_connection_ends_counted_once_as_refused_or_closed_and_its_requests_apart()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var path = MasqueTcpPath.PathFor("127.0.0.1", echo.Port);

        // A tunnel that runs and ends; then the client goes away (GOAWAY, FIN) and waits for the relay to close.
        using (var socket = await relay.ConnectPlainAsync())
        {
            using var h2 = RawHttp2.Over(new NetworkStream(socket, ownsSocket: false));
            await h2.SendAsync(Start.Concat(RawHttp2.ExtendedConnect(1, path)).ToArray());
            Assert.Equal(200, (await h2.ReadUntilAsync(f => f.Type == RawHttp2.Headers && f.Stream == 1))!.Status);
            await h2.SendAsync(RawHttp2.Frame(RawHttp2.Data, RawHttp2.EndStream, 1, "ping"u8));
            Assert.NotNull(await h2.ReadUntilAsync(f => f.Type == RawHttp2.Data && f.Stream == 1 && (f.Flags & RawHttp2.EndStream) != 0));
            await LeaveAsync(h2, tls: null, socket);
        }
        // A request refused; then the client goes away over TLS (close_notify).
        using (var tls = await ConnectHarness.TlsToRelayAsync(await TcpToAsync(relay.TlsPort), SslApplicationProtocol.Http2))
        using (var h2 = RawHttp2.Over(tls))
        {
            await h2.SendAsync(Start);
            await h2.SendAsync(RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(
                (":method", "GET"), (":scheme", "https"), (":authority", "relay.test"), (":path", "/"))));
            Assert.Equal(405, (await h2.ReadUntilAsync(f => f.Type == RawHttp2.Headers && f.Stream == 1))!.Status);
            await LeaveAsync(h2, tls, socket: null);
        }
        // A tunnel open when the client's connection is reset.
        using (var socket = await relay.ConnectPlainAsync())
        {
            using var h2 = RawHttp2.Over(new NetworkStream(socket, ownsSocket: false));
            await h2.SendAsync(Start.Concat(RawHttp2.ExtendedConnect(1, path)).ToArray());
            Assert.Equal(200, (await h2.ReadUntilAsync(f => f.Type == RawHttp2.Headers && f.Stream == 1))!.Status);
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        // A wrong start, refused before Kestrel takes the connection.
        using (var socket = await relay.ConnectPlainAsync())
        {
            await Loopback.SendAllAsync(socket, Http2Start.Preface.ToArray().Concat(RawHttp2.Frame(RawHttp2.Ping, 0, 0, new byte[8])).ToArray());
            Assert.True(await Loopback.IsClosedByPeerAsync(socket));
        }

        string Counts() =>
            $"connect: accepted {relay.Total("passage.relay.connections.accepted", "connect")}, refused {relay.Total("passage.relay.connections.refused", "connect")}, "
            + $"closed {relay.Total("passage.relay.connections.closed", "connect")}, open {relay.Counter("passage.relay.connections.open")}; "
            + $"connect_h2: refused {relay.Total("passage.relay.connections.refused", "connect_h2")}, tunnels opened {relay.Total("passage.relay.tunnels.opened", "connect_h2")}, "
            + $"closed {relay.Total("passage.relay.connections.closed", "connect_h2")}";
        await Timeouts.WaitUntilAsync(
            () => relay.Counter("passage.relay.connections.open") == 0 && relay.Counter("passage.relay.tunnels.open") == 0
                && relay.Total("passage.relay.connections.refused", "connect") + relay.Total("passage.relay.connections.closed", "connect") == 4,
            Counts);
        // The connections, as HTTP/1.1 ones are counted: each accepted one refused or closed, by how it ended.
        Assert.Equal(4, relay.Total("passage.relay.connections.accepted", "connect"));
        Assert.Equal(1, relay.Total("passage.relay.connections.refused", "connect"));
        Assert.Equal(1, relay.Counter("passage.relay.connections.refused/http_request_error"));
        Assert.Equal(3, relay.Total("passage.relay.connections.closed", "connect"));
        // Their requests: one refused, two tunnels, one completed and one whose client failed, as their connections.
        Assert.Equal(1, relay.Total("passage.relay.connections.refused", "connect_h2"));
        Assert.Equal(1, relay.Counter("passage.relay.connections.refused/method_not_allowed"));
        Assert.Equal(2, relay.Total("passage.relay.tunnels.opened", "connect_h2"));
        Assert.Equal(2, relay.Total("passage.relay.connections.closed", "connect_h2"));
        Assert.Equal(2 + 1, relay.Counter("passage.relay.connections.closed/completed"));
        Assert.Equal(1 + 1, relay.Counter("passage.relay.connections.closed/client_failed"));
        Assert.Equal(["connect", "connect_h2"], relay.FrontDoors.Order());
    }

    /// <summary>The start of a client's HTTP/2 connection: the preface and an empty SETTINGS frame.</summary>
    private static byte[] Start => [.. Http2Start.Preface, .. RawHttp2.Frame(RawHttp2.Settings, 0, 0, [])];

    private static async Task<Stream> TcpToAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(Timeouts.Default);
        return new NetworkStream(socket, ownsSocket: true);
    }

    /// <summary>
    /// Leaves an HTTP/2 connection as a well-behaved client does: a GOAWAY, then the end of what it sends (over
    /// <paramref name="tls"/>, its close_notify; else the FIN of the raw connection's socket), then reads until the relay
    /// has closed, so that nothing the relay still writes finds the connection gone.
    /// </summary>
    private static async Task LeaveAsync(RawHttp2 h2, SslStream? tls, Socket? socket)
    {
        await h2.SendAsync(RawHttp2.GoAwayFrame(0));
        if (tls is not null)
        {
            await tls.ShutdownAsync();
        }
        socket?.Shutdown(SocketShutdown.Send);
        Assert.Null(await h2.ReadUntilAsync(_ => false));
    }
}
