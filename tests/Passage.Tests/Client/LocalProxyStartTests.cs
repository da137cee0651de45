using System.Net;
using System.Net.Sockets;
using Passage.Client;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>The local proxies' start.</summary>
public sealed class LocalProxyStartTests
{
    /// <summary>
    /// When the HTTP proxy's endpoint cannot be bound, the SOCKS5 front door started before it is stopped before the
    /// start's error returns: its port free, and nothing of it left running to log after its caller (which reports the
    /// error and exits) has moved on. Its disposal used to be started and left unawaited, its end logged afterwards.
    /// </summary>
    [Fact]
    public async Task A_front_door_that_fails_to_bind_leaves_the_other_stopped_when_the_start_fails()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen(1);
        using var identity = NodeIdentity.Create();
        await using var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", Loopback.ClosedPort())] });
        var log = new RecordingLogger();
        using var factory = log.Factory();

        Assert.Throws<IOException>(() => LocalProxy.Start(
            client,
            new LocalProxyOptions { SocksEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)], HttpEndpoints = [(IPEndPoint)taken.LocalEndPoint!] },
            factory,
            new RelayMetrics()));

        // Read at once, before anything else could run: the SOCKS5 front door's stop is over, not under way.
        var ended = log.Entries.Where(e => e.Name is "Stopped" or "StoppedAtSignal").Select(e => e.Message).ToList();
        Assert.Single(ended, m => m.StartsWith("socks ", StringComparison.Ordinal));
    }
}
