using System.Net;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay;

/// <summary>
/// The relay's caps against the open-file limit: a descriptor per client connection on each listener, one per
/// pass-through upstream and per tunnel, a sixteenth of the limit for splice pipes, 256 kept.
/// </summary>
public sealed class DescriptorBudgetTests
{
    private static readonly IPEndPoint[] One = [new(IPAddress.Loopback, 0)];
    private readonly RecordingLogger _log = new();

    private static RelayOptions Options(bool passthrough, bool tls, bool plain, int connections = 4096, int tunnels = 4096) => new()
    {
        Passthrough = passthrough ? new PassthroughOptions { Endpoints = One } : null,
        Connect = tls || plain ? new ConnectOptions { Endpoints = tls ? One : [], PlainEndpoints = plain ? One : [], MaxTunnels = tunnels } : null,
        Limits = new RelayLimits { MaxConnections = connections },
    };

    [Fact]
    public void Caps_that_fit_are_kept_and_nothing_is_logged()
    {
        var options = Options(passthrough: true, tls: true, plain: true);
        // 3 listeners × 4096 + 4096 pass-through upstreams + 4096 tunnels = 20,480 = 22,118 − 256 − 1,382
        Assert.Same(options, DescriptorBudget.Fit(options, 22_118, _log));
        Assert.Empty(_log.Messages);
    }

    [Fact]
    public void One_descriptor_short_lowers_both_caps_to_an_equal_share_and_says_which_keys()
    {
        var fitted = DescriptorBudget.Fit(Options(passthrough: true, tls: true, plain: true), 22_117, _log);
        // (22,117 − 256 − 1,382) / (3 + 1 + 1) = 4095
        Assert.Equal(4095, fitted.Limits.MaxConnections);
        Assert.Equal(4095, fitted.Connect!.MaxTunnels);
        var line = Assert.Single(_log.Messages);
        Assert.Contains("open-file limit (22117)", line);
        Assert.Contains("using relay.maxConnections 4095 and relay.maxTunnels 4095", line);
    }

    [Fact]
    public void Under_the_common_limit_of_1024_one_connect_listener_gets_352_connections_and_352_tunnels()
    {
        // (1024 − 256 − 64) / 2
        var fitted = DescriptorBudget.Fit(Options(passthrough: false, tls: false, plain: true), 1024, _log);
        Assert.Equal(352, fitted.Limits.MaxConnections);
        Assert.Equal(352, fitted.Connect!.MaxTunnels);
    }

    [Fact]
    public void Pass_through_alone_under_20000_keeps_9247_connections_for_the_bench_s_9000_idle_ones()
    {
        // (20,000 − 256 − 1,250) / 2
        var fitted = DescriptorBudget.Fit(Options(passthrough: true, tls: false, plain: false, connections: 20_000), 20_000, _log);
        Assert.Equal(9247, fitted.Limits.MaxConnections);
        var line = Assert.Single(_log.Messages);
        Assert.Contains("below what relay.maxConnections 20000 need", line);
        Assert.Contains("using relay.maxConnections 9247.", line);
        Assert.DoesNotContain("maxTunnels", line);
    }

    [Fact]
    public void The_default_relay_fits_a_limit_of_20000()
    {
        // Two CONNECT listeners (TLS and plain) × 4096 + 4096 tunnels = 12,288 ≤ 20,000 − 256 − 1,250.
        var options = Options(passthrough: false, tls: true, plain: true);
        Assert.Same(options, DescriptorBudget.Fit(options, 20_000, _log));
        Assert.Empty(_log.Messages);
    }

    [Fact]
    public void Pass_through_alone_plans_no_tunnels_and_a_cap_already_lower_stays()
    {
        var fitted = DescriptorBudget.Fit(Options(passthrough: true, tls: false, plain: false), 1024, _log);
        Assert.Equal(352, fitted.Limits.MaxConnections);
        Assert.Null(fitted.Connect);

        var low = DescriptorBudget.Fit(Options(passthrough: false, tls: true, plain: false, connections: 100, tunnels: 5000), 1024, _log);
        Assert.Equal(100, low.Limits.MaxConnections);
        Assert.Equal(352, low.Connect!.MaxTunnels);
    }

    [Fact]
    public void A_limit_below_the_reserve_leaves_one_of_each_and_an_unknown_limit_or_no_front_door_changes_nothing()
    {
        var tiny = DescriptorBudget.Fit(Options(passthrough: true, tls: true, plain: false), 100, _log);
        Assert.Equal(1, tiny.Limits.MaxConnections);
        Assert.Equal(1, tiny.Connect!.MaxTunnels);

        var unknown = Options(passthrough: true, tls: true, plain: true);
        Assert.Same(unknown, DescriptorBudget.Fit(unknown, null, _log));
        var none = Options(passthrough: false, tls: false, plain: false);
        Assert.Same(none, DescriptorBudget.Fit(none, 10, _log));
        Assert.Single(_log.Messages);
    }

    [Theory]
    [InlineData(4096, 2, 2, 1024L, 176)] // (1024 − 256 − 64) / (2 × 2): the client's SOCKS and HTTP listeners
    [InlineData(100, 2, 2, 1024L, 100)]
    [InlineData(4096, 1, 2, 100L, 1)]
    [InlineData(4096, 2, 2, null, 4096)]
    [InlineData(4096, 0, 2, 1024L, 4096)]
    public void Connections_of_a_front_door_with_no_other_cap_fit_the_limit(int connections, int listeners, int each, long? limit, int expected) =>
        Assert.Equal(expected, DescriptorBudget.FitConnections(connections, listeners, each, limit));
}
