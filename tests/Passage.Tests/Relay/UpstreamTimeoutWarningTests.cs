using System.Net;
using Passage.Relay;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay;

/// <summary>
/// An upstream that never answers fails as surely as one that refuses: the operator is told of it by the same rationed
/// warning, naming the destination only.
/// </summary>
public sealed class UpstreamTimeoutWarningTests
{
    private static readonly RelayLimits ShortConnectTimeout = new() { ConnectTimeout = TimeSpan.FromMilliseconds(300) };

    [Fact]
    public async Task An_upstream_that_swallows_the_connect_is_warned_of()
    {
        using var blackhole = new Blackhole();
        var log = new RecordingLogger();
        var resolver = new DestinationResolver(new AddressPolicy(allowPrivate: true, []), new Dictionary<string, IPAddress[]> { ["silent.test"] = [IPAddress.Loopback] });
        var connector = new UpstreamConnector(resolver, ShortConnectTimeout, log, TimeProvider.System);

        var result = await connector.ConnectAsync(new Passage.Configuration.HostPort("silent.test", blackhole.Port), CancellationToken.None);

        Assert.Null(result.Connection);
        Assert.Equal(RefusalReason.UpstreamTimeout, result.Refusal);
        var line = Assert.Single(log.Entries, e => e.Name == "UpstreamUnavailable");
        Assert.Equal($"Upstream silent.test:{blackhole.Port} unavailable: connection_timeout (TimedOut)", line.Message);
    }

    [Fact]
    public async Task A_name_whose_lookup_never_ends_is_warned_of()
    {
        var log = new RecordingLogger();
        var resolver = new DestinationResolver(
            new AddressPolicy(allowPrivate: true, []),
            lookup: static async (_, cancellationToken) =>
            {
                await Task.Delay(Timeout.Infinite, cancellationToken);
                return [];
            });
        var connector = new UpstreamConnector(resolver, ShortConnectTimeout, log, TimeProvider.System);

        var result = await connector.ConnectAsync(new Passage.Configuration.HostPort("unanswered.test", 443), CancellationToken.None);

        Assert.Null(result.Connection);
        Assert.Equal(RefusalReason.DnsTimeout, result.Refusal);
        var line = Assert.Single(log.Entries, e => e.Name == "UpstreamUnavailable");
        Assert.Equal("Upstream unanswered.test:443 unavailable: dns_timeout (TimedOut)", line.Message);
    }
}
