using System.Net;
using System.Net.Sockets;
using Passage.Relay;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Passthrough;
using Passage.Transport;

namespace Passage.Tests.Relay;

/// <summary>
/// <see cref="RouteBack"/>: a dial that surely reached the relay's own listener is refused at once; one at another of
/// this host's addresses on a wildcard listener's port is not (something else of the kernel may answer there, a
/// service address IPVS holds), only noted, and the hop back in from that very dial is told apart.
/// </summary>
public sealed class RouteBackTests
{
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("0.0.0.0", "127.0.0.1")]
    [InlineData("::", "127.0.0.1")]
    public async Task A_dial_to_the_listeners_own_address_or_to_loopback_under_a_wildcard_is_the_relays_own(string listening, string dialed)
    {
        await using var echo = new EchoServer(IPAddress.Parse(dialed));
        var routeBack = new RouteBack(() => [new IPEndPoint(IPAddress.Parse(listening), echo.Port)], TimeProvider.System, TimeSpan.FromSeconds(15));
        var (connection, reached) = await DialAsync(IPAddress.Parse(dialed), echo.Port);
        await using var _ = connection;

        Assert.Equal(RouteBack.Dial.Own, routeBack.OfDial(connection, reached));
        Assert.False(routeBack.AnyNoted);
        // Another port is someone else's.
        var other = new RouteBack(() => [new IPEndPoint(IPAddress.Parse(listening), echo.Port + 1)], TimeProvider.System, TimeSpan.FromSeconds(15));
        Assert.Equal(RouteBack.Dial.Elsewhere, other.OfDial(connection, reached));
    }

    [OwnAddressTheory]
    [InlineData("0.0.0.0")]
    [InlineData("::")]
    public async Task A_dial_to_another_own_address_on_a_wildcard_listeners_port_is_noted_and_only_its_own_hop_back_is_told(string listening)
    {
        var own = OwnAddressTheoryAttribute.Address!;
        var clock = new ManualTimeProvider();
        // What answers at that address and port here is not the relay (it listens nowhere): as a service address would.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(own, 0));
        listener.Listen(4);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        var routeBack = new RouteBack(() => [new IPEndPoint(IPAddress.Parse(listening), port)], clock, TimeSpan.FromSeconds(15));

        var (first, reached) = await DialAsync(own, port);
        await using var _ = first;
        Assert.Equal(RouteBack.Dial.Noted, routeBack.OfDial(first, reached));
        Assert.True(routeBack.AnyNoted);
        using var firstIn = await listener.AcceptAsync().WaitAsync(Timeouts.Default);

        // A connection from anywhere else is not the dial: here, this host's address from another port.
        var (stranger, _) = await DialAsync(own, port);
        await using var __ = stranger;
        using var strangerIn = await listener.AcceptAsync().WaitAsync(Timeouts.Default);
        Assert.False(routeBack.CameFromOwnDial(strangerIn));

        // The hop in from the noted dial is, once.
        Assert.True(routeBack.CameFromOwnDial(firstIn));
        Assert.False(routeBack.CameFromOwnDial(firstIn));

        // A note counts for its time only.
        var (late, lateReached) = await DialAsync(own, port);
        await using var ___ = late;
        Assert.Equal(RouteBack.Dial.Noted, routeBack.OfDial(late, lateReached));
        using var lateIn = await listener.AcceptAsync().WaitAsync(Timeouts.Default);
        clock.Advance(TimeSpan.FromSeconds(16));
        Assert.False(routeBack.CameFromOwnDial(lateIn));
    }

    private static async Task<(SocketConnection Connection, IPEndPoint Reached)> DialAsync(IPAddress address, int port)
    {
        var result = await TcpDialer.ConnectAsync([address], port, Timeouts.Default).AsTask().WaitAsync(Timeouts.Default);
        Assert.NotNull(result.Connection);
        return (result.Connection, result.Reached!);
    }
}
