using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>Reading the tunnel's settings: defaults, and every error named by its key.</summary>
public sealed class TunnelSettingsTests
{
    private const string PeerId = "3s6nulop7smugeabk4iibtauf6cfgix7uwkwbx2eze6hcg7cs67a";

    private static (TunnelOptions Options, IReadOnlyList<string> Errors) Read(Dictionary<string, string?> settings, bool quic = false)
    {
        var layer = new SettingsLayer("test.json", new ConfigurationBuilder().AddInMemoryCollection(settings).Build());
        var reader = new SettingsReader([layer]);
        var options = TunnelSettings.Read(reader, quic);
        return (options, reader.Errors);
    }

    [Fact]
    public void A_minimal_client_gets_the_documented_defaults()
    {
        var (options, errors) = Read(new()
        {
            ["general:mode"] = "client",
            ["general:peer"] = PeerId,
            ["general:connectAddress"] = "server.example:20010",
            ["tls:key"] = "client.pem",
        });
        Assert.Empty(errors);
        Assert.Equal(TunnelMode.Client, options.Mode);
        Assert.Equal("127.0.0.1:20080", options.HttpBindAddress.ToString());
        Assert.Equal(TimeSpan.FromSeconds(10), options.MaxIdleTimeout);
        Assert.Equal(TimeSpan.FromSeconds(2), options.KeepAliveInterval);
        Assert.Equal(TimeSpan.FromSeconds(1), options.ConnectInterval);
        Assert.Equal(TunnelProtocol.Http2, options.Protocol);
        Assert.True(options.TcpNoDelay);
        Assert.True(options.WaitForFirstAttempt);
        Assert.False(options.AddForwarded);
        Assert.False(options.Compress);
        Assert.Equal(0.5, options.WatchdogFactor);
        Assert.Equal(TimeSpan.FromSeconds(60), options.BackendTimeout);
    }

    [Fact]
    public void Durations_take_units_or_milliseconds()
    {
        var (options, errors) = Read(new()
        {
            ["general:mode"] = "server", ["general:peer"] = PeerId, ["general:httpConnectAddress"] = "localhost:8081", ["tls:key"] = "s.pem",
            ["transport:maxIdleTimeout"] = "1500ms", ["transport:keepAliveInterval"] = "750", ["system:connectInterval"] = "5s",
            ["system:backendTimeout"] = "0",
        });
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.Zero, options.BackendTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.MaxIdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(750), options.KeepAliveInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), options.ConnectInterval);
    }

    [Fact]
    public void Every_error_is_reported_at_once_naming_its_key()
    {
        var (_, errors) = Read(new()
        {
            ["general:mode"] = "sideways",
            ["general:peer"] = "not-an-id",
            ["general:httpBindAddress"] = "example.org:80",
            ["transport:maxIdleTimeout"] = "soon",
            ["transport:maxConcurrentHttpStreams"] = "0",
            ["transport:bogus"] = "1",
            ["system:watchdogFactor"] = "2",
            ["system:backendTimeout"] = "-1s",
        });
        Assert.Contains(errors, e => e.StartsWith("general.mode: 'sideways' is not one of client, server", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("general.peer: 'not-an-id' is not a node ID", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("general.httpBindAddress: 'example.org:80'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("transport.maxIdleTimeout: 'soon'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("transport.maxConcurrentHttpStreams: '0'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("transport.bogus: unknown setting", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("system.watchdogFactor: '2'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("system.backendTimeout: '-1s'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("tls.key: required", StringComparison.Ordinal));
    }

    [Fact]
    public void Each_mode_names_the_address_it_needs()
    {
        var (_, clientErrors) = Read(new() { ["general:mode"] = "client", ["general:peer"] = PeerId, ["tls:key"] = "k.pem" });
        Assert.Contains(clientErrors, e => e.StartsWith("general.connectAddress: required in client mode", StringComparison.Ordinal));
        var (_, serverErrors) = Read(new() { ["general:mode"] = "server", ["general:peer"] = PeerId, ["tls:key"] = "k.pem" });
        Assert.Contains(serverErrors, e => e.StartsWith("general.httpConnectAddress: required in server mode", StringComparison.Ordinal));
        var (_, noMode) = Read(new() { ["general:peer"] = PeerId, ["tls:key"] = "k.pem" });
        Assert.Contains(noMode, e => e.StartsWith("general.mode: required", StringComparison.Ordinal));
    }

    [Fact]
    public void The_peer_is_pinned_by_ID_or_by_a_CA_and_name_not_neither()
    {
        var (_, neither) = Read(new() { ["general:mode"] = "server", ["general:httpConnectAddress"] = "b:1", ["tls:key"] = "k.pem" });
        Assert.Contains(neither, e => e.StartsWith("general.peer: required", StringComparison.Ordinal));
        using var directory = new TemporaryDirectory();
        var ca = directory.Write("ca.pem", "");
        var (_, caWithoutName) = Read(new() { ["general:mode"] = "server", ["general:httpConnectAddress"] = "b:1", ["tls:key"] = "k.pem", ["tls:ca"] = ca });
        Assert.Contains(caWithoutName, e => e.StartsWith("general.peerHostname: required with tls.ca", StringComparison.Ordinal));
        var (_, both) = Read(new() { ["general:mode"] = "server", ["general:httpConnectAddress"] = "b:1", ["tls:key"] = "k.pem", ["tls:ca"] = ca, ["general:peerHostname"] = "a.test", ["general:peer"] = PeerId });
        Assert.Contains(both, e => e.StartsWith("general.peer: set either", StringComparison.Ordinal));
    }

    [Fact]
    public void H3_without_QUIC_fails_with_a_clear_message_and_auto_means_HTTP2()
    {
        var baseSettings = new Dictionary<string, string?> { ["general:mode"] = "client", ["general:peer"] = PeerId, ["general:connectAddress"] = "s:1", ["tls:key"] = "k.pem" };
        var (_, errors) = Read(new(baseSettings) { ["transport:protocol"] = "h3" }, quic: false);
        Assert.Contains(errors, e => e.StartsWith("transport.protocol: h3 needs QUIC", StringComparison.Ordinal));
        var (auto, autoErrors) = Read(new(baseSettings) { ["transport:protocol"] = "auto" }, quic: false);
        Assert.Empty(autoErrors);
        Assert.Equal(TunnelProtocol.Http2, auto.Protocol);
        var (h3, h3Errors) = Read(new(baseSettings) { ["transport:protocol"] = "h3" }, quic: true);
        Assert.Empty(h3Errors);
        Assert.Equal(TunnelProtocol.Http3, h3.Protocol);
    }

    [Fact]
    public void An_unknown_congestion_algorithm_is_refused_naming_what_is_available()
    {
        var (_, errors) = Read(new() { ["general:mode"] = "client", ["general:peer"] = PeerId, ["general:connectAddress"] = "s:1", ["tls:key"] = "k.pem", ["transport:congestionAlgorithm"] = "warp9" });
        Assert.Contains(errors, e => e.StartsWith("transport.congestionAlgorithm: 'warp9' is not available", StringComparison.Ordinal) || e.Contains("needs Linux", StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_command_reports_every_error_and_starts_nothing()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("tunnel.json", """{ "general": { "mode": "client", "connectAddress": "nowhere" }, "transport": { "keepAliveInterval": "often" } }""");
        var (exit, _, stderr) = await PassageProcess.RunAsync(["tunnel", "--config", file]);
        Assert.Equal(1, exit);
        Assert.Contains("nothing was started", stderr);
        Assert.Contains("general.connectAddress: 'nowhere'", stderr);
        Assert.Contains("transport.keepAliveInterval: 'often'", stderr);
        Assert.Contains("general.peer: required", stderr);
        Assert.Contains("tls.key: required", stderr);
    }
}
