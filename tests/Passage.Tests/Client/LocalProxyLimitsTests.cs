using System.Net;
using System.Net.Sockets;
using Passage.Client;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>The local proxies' connection limits.</summary>
public sealed class LocalProxyLimitsTests
{
    /// <summary>
    /// A relay holds each client (an address) to <see cref="RelayLimits.DefaultMaxConnectionsPerClient"/> connections;
    /// the local proxies share its front door and must not: their applications all come from this host's loopback
    /// address. One more than a relay would take from one address is admitted (they wait in the SOCKS5 greeting, no relay
    /// needed).
    /// </summary>
    [Fact]
    public async Task Applications_on_one_loopback_address_are_not_held_to_a_relays_cap_per_client()
    {
        using var identity = NodeIdentity.Create();
        await using var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", Loopback.ClosedPort())] });
        var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        await using var proxy = LocalProxy.Start(client, new LocalProxyOptions { SocksEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)], HttpEndpoints = [] }, metrics: metrics);
        var apps = new List<Socket>();
        try
        {
            var count = RelayLimits.DefaultMaxConnectionsPerClient + 1;
            for (var i = 0; i < count; i++)
            {
                var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                apps.Add(app);
                await app.ConnectAsync(proxy.SocksEndpoints[0]).WaitAsync(Timeouts.Default);
            }
            // Every one counted open: one refused would never be.
            await Timeouts.WaitUntilAsync(() => recorder["passage.relay.connections.open"] == count);
            Assert.Equal(0, recorder["passage.relay.connections.refused/connection_limit_reached"]);
        }
        finally
        {
            apps.ForEach(a => a.Dispose());
        }
    }
}
