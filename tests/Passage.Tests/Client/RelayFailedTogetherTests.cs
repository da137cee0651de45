using Passage.Client;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>Tunnel setups that one relay fails together: one failure of the relay, not one per tunnel.</summary>
public sealed class RelayFailedTogetherTests
{
    /// <summary>
    /// Tunnels an application opens at once and that the relay fails together take it for down once: it is probed again
    /// after the first backoff (250 ms), not after 250 ms doubled once per tunnel. Each failed setup used to double the
    /// backoff, so four tunnels that met one failure kept the relay from its probes for 2 s (eight, for 30 s), and new
    /// tunnels went to the other relays meanwhile, though it had recovered.
    /// </summary>
    [Fact]
    public async Task Tunnels_a_relay_fails_together_take_it_for_down_once()
    {
        const int Together = 4;
        var clock = new ManualTimeProvider();
        var asked = 0;
        var allAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            // Each tunnel asks before any is failed, as those an application opens at once do.
            if (Interlocked.Increment(ref asked) == Together)
            {
                allAsked.SetResult();
            }
            await allAsked.Task;
            await connection.SendAsync(HostileConnection.Answer(stream, 503, endStream: true));
        });
        await using var client = await HostileRelayTests.StartClientAsync(clock, relay);

        var errors = await Task.WhenAll(Enumerable.Range(0, Together).Select(_ =>
            Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))));
        Assert.All(errors, e => Assert.Equal(TunnelFailure.RelayBusy, e.Failure));
        Assert.False(client.Status.Single().IsUp);
        var probes = relay.Probes;

        // The probe loop's passes (one every 100 ms), each seen through, past the first backoff.
        for (var pass = 0; pass < 4; pass++)
        {
            await Timeouts.WaitUntilAsync(() => clock.ArmedTimers == 1 || relay.Probes > probes);
            clock.Advance(TimeSpan.FromMilliseconds(100));
        }
        await Timeouts.WaitUntilAsync(() => client.Status.Single().IsUp, () => $"probes: {relay.Probes - probes}");
    }
}
