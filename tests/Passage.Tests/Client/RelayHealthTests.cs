using Passage.Client;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

public sealed class RelayHealthTests
{
    private static TimeSpan UntilNextProbe(RelayHealth health, ManualTimeProvider clock) =>
        TimeSpan.FromSeconds((double)(health.NextProbe - clock.GetTimestamp()) / clock.TimestampFrequency);

    /// <summary>
    /// A relay that answers its probes and fails every tunnel (a 200 then a reset, say) is down longer each time: a
    /// probe brings it up, but only a tunnel it serves starts its backoff afresh. It used to be reset by the probe, so
    /// the relay was up again every 250 ms and failed the next tunnel each time.
    /// </summary>
    [Fact]
    public void Probes_bring_a_relay_up_but_only_a_served_tunnel_starts_its_backoff_afresh()
    {
        var clock = new ManualTimeProvider();
        var health = new RelayHealth(0);

        health.Failed(clock);
        Assert.Equal(TimeSpan.FromMilliseconds(250), UntilNextProbe(health, clock));
        clock.Advance(TimeSpan.FromMilliseconds(250));
        health.Succeeded(TimeSpan.FromMilliseconds(1)); // the probe
        Assert.True(health.IsUp);

        health.Failed(clock); // the next tunnel fails
        Assert.Equal(TimeSpan.FromMilliseconds(500), UntilNextProbe(health, clock));
        health.Succeeded(TimeSpan.FromMilliseconds(1));
        health.Failed(clock);
        Assert.Equal(TimeSpan.FromSeconds(1), UntilNextProbe(health, clock));

        health.Served(TimeSpan.FromMilliseconds(1)); // a tunnel it served
        health.Failed(clock);
        Assert.Equal(TimeSpan.FromMilliseconds(250), UntilNextProbe(health, clock));
    }
}
