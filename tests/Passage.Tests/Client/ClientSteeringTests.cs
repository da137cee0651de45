using System.Diagnostics;
using System.Net;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client;

/// <summary>Steering between relays: by measured round trip, and failover when one dies.</summary>
public sealed class ClientSteeringTests
{
    [Fact]
    public async Task After_warm_up_the_slower_relay_gets_fewer_new_tunnels_whatever_the_listed_order()
    {
        await using var echo = new EchoServer();
        await using var fast = await ConnectHarness.StartAsync();
        await using var slowRelay = await ConnectHarness.StartAsync();
        await using var slow = new DelayTap(new IPEndPoint(IPAddress.Loopback, slowRelay.TlsPort), TimeSpan.FromMilliseconds(40));
        // The slow relay is listed first: only measurement can move tunnels to the fast one.
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(slowRelay.Relay.NodeId, "127.0.0.1", slow.Port), new PeerAddress(fast.Relay.NodeId, "127.0.0.1", fast.TlsPort)],
            ProbeInterval = TimeSpan.FromMilliseconds(100),
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        await Task.Delay(500); // a few probes each

        for (var i = 0; i < 20; i++)
        {
            await using var tunnel = await client.ConnectAsync("origin.test", echo.Port);
        }
        var onFast = fast.Counter("passage.relay.tunnels.opened");
        var onSlow = slowRelay.Counter("passage.relay.tunnels.opened");
        Assert.Equal(20, onFast + onSlow);
        Assert.True(onFast > onSlow, $"fast {onFast}, slow {onSlow}; status: {string.Join("; ", client.Status)}");
    }

    [Fact]
    public async Task When_the_first_relay_dies_new_tunnels_go_to_the_second_and_no_setup_fails()
    {
        // Each relay maps origin.test to its own echo server, which greets with the relay's letter.
        await using var echoA = new EchoServer(IPAddress.Loopback, greeting: "A"u8.ToArray());
        await using var echoB = new EchoServer(IPAddress.Parse("127.0.0.2"), echoA.Port, greeting: "B"u8.ToArray());
        await using var relayA = await RelayProcess.StartAsync("127.0.0.1");
        await using var relayB = await RelayProcess.StartAsync("127.0.0.2");
        // B sits behind a small delay so that A is the clear choice while it lives.
        await using var slowB = new DelayTap(new IPEndPoint(IPAddress.Loopback, relayB.Port), TimeSpan.FromMilliseconds(30));
        var addressB = new PeerAddress(relayB.NodeId, "127.0.0.1", slowB.Port);
        await using var client = new PassageClient(new PassageClientOptions { Relays = [relayA.Address, addressB], ProbeInterval = TimeSpan.FromMilliseconds(200) });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        // Tunnels one after another: once one has gone through A, A is killed (no goodbye to the client); from the
        // moment the client reports A down, every new tunnel must go to B, and no setup may fail at any point (an
        // exception fails the test). Bounded by events, not by a clock: a slow machine only makes it take longer.
        var aName = relayA.Address.ToString();
        var seen = new List<(bool Killed, bool ADown, char Relay)>();
        using var patience = new CancellationTokenSource(Timeouts.Default * 2);
        while (seen.Count(s => s.ADown) < 10)
        {
            Assert.False(patience.IsCancellationRequested, $"not done in time; seen: {string.Join(" ", seen)}");
            var killed = seen.Any(s => s.Killed);
            if (!killed && seen.Any(s => s.Relay == 'A'))
            {
                await relayA.Process.KillAsync();
                killed = true;
            }
            var aDown = killed && !client.Status.Single(r => r.Relay == aName).IsUp;
            await using var tunnel = await client.ConnectAsync("origin.test", echoA.Port).AsTask().WaitAsync(Timeouts.Default);
            var greeting = new byte[1];
            await tunnel.ReadExactlyAsync(greeting).AsTask().WaitAsync(Timeouts.Default);
            seen.Add((killed, aDown, (char)greeting[0]));
            await Task.Delay(20);
        }

        Assert.All(seen.Where(s => s.ADown), s => Assert.Equal('B', s.Relay));
        Assert.False(client.Status.Single(r => r.Relay == relayA.Address.ToString()).IsUp);
    }
}
