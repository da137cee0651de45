using System.Net;
using Microsoft.Extensions.Logging;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay;

/// <summary>
/// What HTTP/2 tunnels may hold (a receive window each, a connection's window at most per connection) against half of
/// the memory the process may use: the tunnels' window is lowered to fit, to no less than 64 KiB.
/// </summary>
public sealed class MemoryBudgetTests
{
    private const long MiB = 1024 * 1024, GiB = 1024 * MiB;
    private static readonly IPEndPoint[] One = [new(IPAddress.Loopback, 0)];
    private readonly RecordingLogger _log = new();

    private static RelayOptions Options(int connections = 4096, int tunnels = 4096, int window = 4 * 1024 * 1024, bool plainToo = false) => new()
    {
        Connect = new ConnectOptions { Endpoints = One, PlainEndpoints = plainToo ? One : [], MaxTunnels = tunnels, StreamWindowBytes = window },
        Limits = new RelayLimits { MaxConnections = connections },
    };

    [Fact]
    public void The_defaults_fit_in_32_GiB_and_nothing_is_logged()
    {
        // 4096 tunnels × 4 MiB = 16 GiB, half of 32 GiB.
        var options = Options();
        Assert.Same(options, MemoryBudget.Fit(options, 32 * GiB, _log));
        Assert.Empty(_log.Messages);
    }

    [Fact]
    public void In_16_GiB_the_default_window_is_halved_and_the_line_names_the_keys()
    {
        var fitted = MemoryBudget.Fit(Options(), 16 * GiB, _log);
        // 8 GiB / 4096 tunnels
        Assert.Equal(2 * 1024 * 1024, fitted.Connect!.StreamWindowBytes);
        var entry = Assert.Single(_log.Entries);
        Assert.Equal(LogLevel.Information, entry.Level);
        Assert.Contains("a receive window of 2097152 bytes instead of relay.streamWindow 4194304", entry.Message);
        Assert.Contains("relay.maxTunnels 4096", entry.Message);
        Assert.Contains("16384 MiB", entry.Message);
    }

    [Fact]
    public void The_window_is_whole_pages()
    {
        // Half of 24 GiB minus 1 MiB over 4096 tunnels is 3,145,472 bytes: 767 pages and a part.
        var fitted = MemoryBudget.Fit(Options(), 24 * GiB - 2 * MiB, _log);
        Assert.Equal(767 * 4096, fitted.Connect!.StreamWindowBytes);
        Assert.True((long)fitted.Connect.MaxTunnels * fitted.Connect.StreamWindowBytes <= (24 * GiB - 2 * MiB) / 2);
    }

    [Fact]
    public void In_1_GiB_a_window_is_128_KiB()
    {
        Assert.Equal(128 * 1024, MemoryBudget.Fit(Options(), GiB, _log).Connect!.StreamWindowBytes);
    }

    [Fact]
    public void Below_64_KiB_a_window_the_window_stays_64_KiB_and_a_warning_says_to_lower_max_tunnels()
    {
        // Half of 256 MiB over 4096 tunnels is 32 KiB.
        var fitted = MemoryBudget.Fit(Options(), 256 * MiB, _log);
        Assert.Equal(64 * 1024, fitted.Connect!.StreamWindowBytes);
        var entry = Assert.Single(_log.Entries);
        Assert.Equal(LogLevel.Warning, entry.Level);
        Assert.Contains("may hold 256 MiB, more than half of the 256 MiB", entry.Message);
        Assert.Contains("Lower relay.maxTunnels", entry.Message);
    }

    [Fact]
    public void A_window_configured_below_64_KiB_is_never_raised()
    {
        var fitted = MemoryBudget.Fit(Options(window: 65_535), 256 * MiB, _log);
        Assert.Equal(65_535, fitted.Connect!.StreamWindowBytes);
        Assert.Equal(LogLevel.Warning, Assert.Single(_log.Entries).Level);
    }

    [Fact]
    public void Fewer_tunnels_keep_their_window()
    {
        // 256 tunnels × 4 MiB = 1 GiB, half of 2 GiB.
        var options = Options(tunnels: 256);
        Assert.Same(options, MemoryBudget.Fit(options, 2 * GiB, _log));
    }

    [Fact]
    public void Few_connections_bound_it_by_their_own_windows()
    {
        // 16 connections × 16 MiB on each of two listeners = 512 MiB, half of 1 GiB, whatever the tunnels' windows.
        var options = Options(connections: 16, plainToo: true);
        Assert.Same(options, MemoryBudget.Fit(options, GiB, _log));
        // One more connection per listener does not fit: then the tunnels' window counts.
        Assert.Equal(128 * 1024, MemoryBudget.Fit(Options(connections: 17, plainToo: true), GiB, _log).Connect!.StreamWindowBytes);
    }

    [Fact]
    public void Without_a_connect_door_nothing_changes()
    {
        var options = new RelayOptions { Passthrough = new PassthroughOptions { Endpoints = One } };
        Assert.Same(options, MemoryBudget.Fit(options, 64 * MiB, _log));
        Assert.Empty(_log.Messages);
    }
}
