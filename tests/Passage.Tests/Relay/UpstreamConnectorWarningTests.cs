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

    /// <summary>
    /// A refused address is said in the log line in the same words as in the refusal's details, not as the name of its
    /// category; the line names the destination only, never the client.
    /// </summary>
    [Fact]
    public async Task A_destination_refused_by_policy_is_logged_in_the_words_of_the_refusal()
    {
        var log = new RecordingLogger();
        var resolver = new DestinationResolver(new AddressPolicy(allowPrivate: false, []), new Dictionary<string, IPAddress[]> { ["inside.test"] = [IPAddress.Loopback] });
        var connector = new UpstreamConnector(resolver, new RelayLimits(), log, new ManualTimeProvider());

        var result = await connector.ConnectAsync(new HostPort("inside.test", 443), CancellationToken.None);

        Assert.Equal(RefusalReason.DestinationProhibited, result.Refusal);
        Assert.Equal("resolves to a loopback address", result.Detail);
        var line = Assert.Single(log.Entries, e => e.Name == "DestinationProhibited");
        Assert.Equal("Destination inside.test:443 refused by policy: 127.0.0.1 is a loopback address", line.Message);
    }

    /// <summary>
    /// One of this host's own (non-loopback) addresses is refused as loopback, and said as what it is: it was "a loopback
    /// address", which a reader of "10.1.2.3 is a loopback address" would take for a mistake.
    /// </summary>
    [Fact]
    public async Task A_destination_at_an_address_of_the_relays_own_host_is_refused_in_those_words()
    {
        if (Passthrough.OwnAddressTheoryAttribute.Address is not { } own)
        {
            // No IPv4 address but loopback on this host.
            return;
        }
        var log = new RecordingLogger();
        var resolver = new DestinationResolver(new AddressPolicy(allowPrivate: false, []), new Dictionary<string, IPAddress[]> { ["own.test"] = [own] });
        var connector = new UpstreamConnector(resolver, new RelayLimits(), log, new ManualTimeProvider());

        var result = await connector.ConnectAsync(new HostPort("own.test", 443), CancellationToken.None);

        Assert.Equal(RefusalReason.DestinationProhibited, result.Refusal);
        Assert.Equal("resolves to an address of the relay's own host", result.Detail);
        var line = Assert.Single(log.Entries, e => e.Name == "DestinationProhibited");
        Assert.Equal($"Destination own.test:443 refused by policy: {own} is an address of the relay's own host", line.Message);
    }
}
