using System.Net;
using Passage.Configuration;
using Passage.Relay;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay;

/// <summary>
/// Clients choose destinations, so a client can make upstreams fail as often as it likes: the warning for each is
/// rationed, and what is left out is said.
/// </summary>
public sealed class UpstreamConnectorWarningTests
{
    [Fact]
    public async Task Upstream_failures_are_warned_of_at_most_ten_times_per_ten_seconds_and_the_rest_are_counted_in_a_line()
    {
        var log = new RecordingLogger();
        var time = new ManualTimeProvider();
        var resolver = new DestinationResolver(new AddressPolicy(allowPrivate: true, []), new Dictionary<string, IPAddress[]> { ["dead.test"] = [IPAddress.Loopback] });
        var connector = new UpstreamConnector(resolver, new RelayLimits(), log, time);
        var target = new HostPort("dead.test", Loopback.ClosedPort());

        for (var i = 0; i < 25; i++)
        {
            var result = await connector.ConnectAsync(target, CancellationToken.None);
            Assert.Null(result.Connection);
            Assert.Equal(RefusalReason.UpstreamRefused, result.Refusal);
        }
        Assert.Equal(UpstreamConnector.WarningsPerWindow, log.Entries.Count(e => e.Name == "UpstreamUnavailable"));
        Assert.DoesNotContain(log.Entries, e => e.Name == "UpstreamUnavailableSkipped");

        time.Advance(TimeSpan.FromSeconds(10));
        await connector.ConnectAsync(target, CancellationToken.None);
        var skipped = Assert.Single(log.Entries, e => e.Name == "UpstreamUnavailableSkipped");
        Assert.StartsWith("15 more upstreams were unavailable and not logged", skipped.Message);
        Assert.Equal(UpstreamConnector.WarningsPerWindow + 1, log.Entries.Count(e => e.Name == "UpstreamUnavailable"));
        Assert.Equal("UpstreamUnavailable", log.Entries[^1].Name);
    }
}
