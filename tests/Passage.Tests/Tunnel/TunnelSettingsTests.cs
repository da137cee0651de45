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
            ["transport:maxIdleTimeout"] = "1500ms", ["transport:keepAliveInterval"] = "1750", ["system:connectInterval"] = "5s",
            ["system:backendTimeout"] = "0",
        });
        Assert.Empty(errors);
        Assert.Equal(TimeSpan.Zero, options.BackendTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), options.MaxIdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1750), options.KeepAliveInterval);
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

    /// <summary>
    /// HTTP/2 keep-alive pings take no delay or timeout under a second: <c>config check</c> passed 500 ms, then the start
    /// died with the HTTP client's ArgumentOutOfRangeException and its stack. Both are refused naming their key, by the
    /// check and the start alike.
    /// </summary>
    [Fact]
    public async Task A_keep_alive_interval_or_idle_timeout_under_a_second_is_refused_naming_its_key()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "client", "peer": "{{PeerId}}", "connectAddress": "127.0.0.1:1" },
              "tls": { "key": {{System.Text.Json.JsonSerializer.Serialize(directory.File("client.pem"))}} },
              "transport": { "keepAliveInterval": "500ms", "maxIdleTimeout": "900" } }
            """);
        foreach (string[] args in (string[][])[["config", "check", file], ["tunnel", "--config", file]])
        {
            var (exit, stdout, stderr) = await PassageProcess.RunAsync(args);
            Assert.True(exit == 1, string.Join(' ', args) + ": " + stdout + stderr);
            Assert.Contains("transport.keepAliveInterval: '500ms'", stderr);
            Assert.Contains("transport.maxIdleTimeout: '900'", stderr);
            Assert.Contains("1s or more", stderr);
            Assert.DoesNotContain("   at ", stderr);
        }
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

    /// <summary>
    /// A FIFO given as <c>tls.ca</c> or <c>tls.cert</c> passed the settings (they only had to exist) and then held the
    /// start for ever: reading the CA's or the certificate's PEM opened it and waited for a writer. With <c>tls.cert</c>,
    /// <c>tls.key</c> was read the same way. Each is refused at once, naming its key, by <c>--check</c> too.
    /// </summary>
    [Fact]
    public async Task Fifos_for_the_CA_the_certificate_and_its_key_are_refused_at_once_each_by_its_key()
    {
        using var directory = new TemporaryDirectory();
        var ca = Configuration.InputFileTests.MakeFifo(directory.Path, "ca.pem");
        var cert = Configuration.InputFileTests.MakeFifo(directory.Path, "cert.pem");
        var key = Configuration.InputFileTests.MakeFifo(directory.Path, "key.pem");
        var file = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "server", "peerHostname": "client.test", "bindAddress": "127.0.0.1:0", "httpConnectAddress": "127.0.0.1:1" },
              "tls": { "ca": "{{ca}}", "cert": "{{cert}}", "key": "{{key}}" } }
            """);

        foreach (var args in new[] { new[] { "tunnel", "--config", file }, ["tunnel", "--config", file, "--check"] })
        {
            var (exit, stdout, stderr) = await PassageProcess.RunAsync(args);
            Assert.Equal(1, exit);
            Assert.Contains("3 errors; nothing was started", stderr);
            Assert.Contains($"tls.ca: '{ca}' is a FIFO (named pipe), not a regular file", stderr);
            Assert.Contains($"tls.cert: '{cert}' is a FIFO (named pipe), not a regular file", stderr);
            Assert.Contains($"tls.key: '{key}' is a FIFO (named pipe), not a regular file", stderr);
            Assert.DoesNotContain("listening", stdout + stderr);
        }
    }

    /// <summary>
    /// A file that became a FIFO (or a device) after the settings were checked is refused when it is read, naming its
    /// key, instead of holding the start: the PEM files are read as regular files only, and to a bound.
    /// </summary>
    [Fact]
    public async Task The_CA_and_certificate_files_are_read_only_as_regular_files()
    {
        using var directory = new TemporaryDirectory();
        var fifo = Configuration.InputFileTests.MakeFifo(directory.Path, "fifo.pem");
        var options = new TunnelOptions { Mode = TunnelMode.Server, CaFile = fifo, PeerHostname = "client.test", KeyFile = "/dev/zero" };

        // Run aside: opening a FIFO would wait for a writer for ever; the timeout turns that into a failure.
        var caError = await Task.Run(() => Assert.Throws<InvalidDataException>(() => TunnelCredentials.Load(options))).WaitAsync(Timeouts.Default);
        Assert.Equal($"tls.ca: '{fifo}' is a FIFO (named pipe), not a regular file", caError.Message);

        var pinned = new TunnelOptions { Mode = TunnelMode.Server, Peer = Passage.Identity.NodeId.Parse(PeerId), CertFile = fifo, KeyFile = "/dev/zero" };
        var certError = await Task.Run(() => Assert.Throws<InvalidDataException>(() => TunnelCredentials.Load(pinned))).WaitAsync(Timeouts.Default);
        Assert.Equal($"tls.cert: '{fifo}' is a FIFO (named pipe), not a regular file", certError.Message);
    }
}
