using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// The CONNECT front door's counters add up whatever clients do: every accepted connection is counted once, as
/// refused or as closed, and every tunnel counted opened is counted closed.
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
}
