using System.Net;
using System.Net.Sockets;
using System.Reflection;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// <see cref="SocketReadiness.TryGetEndpoint"/> compared with <see cref="SocketReadiness.ToAddress16"/>: what a pass-through relay asks of every upstream it dialed when it
/// listens on every address (is this the relay itself?), so it must be right for both families and keep nothing.
/// </summary>
public sealed class SocketLocalAddressTests
{
    /// <summary>Whether the socket's own address is <paramref name="address"/>, as RouteBack asks it.</summary>
    private static bool LocalAddressIs(Socket socket, IPAddress address) =>
        SocketReadiness.TryGetEndpoint(socket, peer: false, out var local, out _) && SocketReadiness.ToAddress16(address, out var wanted) && local.Equals(wanted);

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Tells_the_socket_own_address_from_any_other(string loopback)
    {
        var address = IPAddress.Parse(loopback);
        var (connector, accepted) = await Loopback.ConnectedPairAsync(address);
        using var _ = connector;
        using var __ = accepted;

        Assert.True(LocalAddressIs(connector, address));
        Assert.True(LocalAddressIs(accepted, address));
        Assert.False(LocalAddressIs(connector, address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Parse("127.0.0.2") : IPAddress.IPv6Any));
        Assert.False(LocalAddressIs(connector, address.AddressFamily == AddressFamily.InterNetwork ? IPAddress.IPv6Loopback : IPAddress.Loopback));
    }

    [Fact]
    public async Task Reads_an_IPv4_mapped_address_of_a_dual_mode_socket_as_its_IPv4_one()
    {
        using var listener = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp) { DualMode = true };
        listener.Bind(new IPEndPoint(IPAddress.IPv6Any, 0));
        listener.Listen(1);
        using var connector = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accept = listener.AcceptAsync();
        await connector.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndPoint!).Port)).WaitAsync(Timeouts.Default);
        using var accepted = await accept.WaitAsync(Timeouts.Default);

        Assert.True(LocalAddressIs(accepted, IPAddress.Loopback));
        Assert.False(LocalAddressIs(accepted, IPAddress.Parse("127.0.0.2")));
    }

    [Fact]
    public async Task Keeps_no_endpoint_in_the_socket_nor_answers_for_a_closed_one()
    {
        var localEndPoint = typeof(Socket).GetField("_localEndPoint", BindingFlags.Instance | BindingFlags.NonPublic);
        Assert.NotNull(localEndPoint);
        var (connector, accepted) = await Loopback.ConnectedPairAsync();
        using var _ = accepted;

        Assert.True(LocalAddressIs(connector, IPAddress.Loopback));
        Assert.Null(localEndPoint.GetValue(connector));
        // What the runtime's own property does instead, which the field shows.
        Assert.NotNull(connector.LocalEndPoint);
        Assert.NotNull(localEndPoint.GetValue(connector));

        connector.Dispose();
        Assert.False(LocalAddressIs(connector, IPAddress.Loopback));
    }
}
