using System.Text.Json;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>What the relay's log says about clients and destinations, as a real process.</summary>
public sealed class RelayLogPrivacyTests
{
    private static async Task<string> RunTrafficAsync(params string[] extraArgs)
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0", "--route", $"origin.test=:{origin.Port}",
            "--map", "origin.test=127.0.0.1", "--allow-private", .. extraArgs,
        ]);
        var port = await relay.WaitForListeningPortAsync();
        var ok = await Curl.RunAsync("--interface", "127.0.0.2", "--connect-to", $"origin.test:443:127.0.0.1:{port}", "--cacert", origin.CertificatePath, "https://origin.test/");
        Assert.True(ok.ExitCode == 0, ok.StandardError);
        // A refusal too: a route miss.
        await Curl.RunAsync("--interface", "127.0.0.2", "-k", "--connect-to", $"nowhere.test:443:127.0.0.1:{port}", "https://nowhere.test/");
        relay.Signal(PassageProcess.SigTerm);
        await relay.WaitForExitAsync(Timeouts.Default);
        return relay.StandardError;
    }

    [Fact]
    public async Task At_the_default_level_no_line_names_the_client_with_a_destination()
    {
        var log = await RunTrafficAsync();
        Assert.Contains("listening on", log);
        foreach (var line in log.Split('\n'))
        {
            var namesClient = line.Contains("127.0.0.2", StringComparison.Ordinal);
            var namesDestination = line.Contains("origin.test", StringComparison.Ordinal) || line.Contains("nowhere.test", StringComparison.Ordinal);
            Assert.False(namesClient && namesDestination, line);
            Assert.False(namesClient, $"client address logged at the default level: {line}");
        }
    }

    [Fact]
    public async Task At_debug_level_connections_are_traceable_so_the_check_above_can_fail()
    {
        var log = await RunTrafficAsync("--log-level", "debug");
        Assert.Contains("from 127.0.0.2", log);
        Assert.Contains("relayed to origin.test", log);
    }

    [Fact]
    public async Task Json_format_writes_one_json_object_per_line()
    {
        var log = await RunTrafficAsync("--log-format", "json");
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(lines);
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            Assert.True(json.RootElement.TryGetProperty("EventId", out _), line);
        }
        Assert.Contains(lines, l => l.Contains("\"EventId\":100,", StringComparison.Ordinal) && l.Contains("listening on", StringComparison.Ordinal));
    }
}
