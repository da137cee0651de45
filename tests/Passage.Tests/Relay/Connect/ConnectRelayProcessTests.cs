using System.Text.RegularExpressions;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>The CONNECT relay as a real <c>passage</c> process.</summary>
public sealed partial class ConnectRelayProcessTests
{
    [Fact]
    public async Task With_no_arguments_the_relay_serves_connect_on_loopback_and_prints_a_curl_command_that_works()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(["relay"], workingDirectory: directory.Path);
        var tryLine = await relay.WaitForLineAsync(l => l.StartsWith("try ", StringComparison.Ordinal));
        var nodeLine = await relay.WaitForLineAsync(l => l.StartsWith("node ID ", StringComparison.Ordinal));

        // The identity is kept under ./passage-data/, and `passage id` agrees with what was printed.
        var key = Path.Combine(directory.Path, "passage-data", "relay.pem");
        Assert.True(File.Exists(key));
        var (_, id, _) = await PassageProcess.RunAsync(["id", key]);
        Assert.Equal(nodeLine["node ID ".Length..].Trim(), id.Trim());

        // Run the printed command. The machine has no route to example.org, so the relay answers
        // the CONNECT with 502 dns_error: proof that TLS to the relay, the pin and CONNECT worked.
        var match = CurlCommand().Match(tryLine);
        Assert.True(match.Success, tryLine);
        var (exit, _, error) = await Curl.RunAsync("-v", "-p", "-x", match.Groups["proxy"].Value,
            "--proxy-cacert", Path.Combine(directory.Path, match.Groups["cert"].Value),
            "--proxy-pinnedpubkey", match.Groups["pin"].Value, match.Groups["url"].Value);
        Assert.NotEqual(0, exit);
        Assert.Contains("HTTP/1.1 502", error);
        Assert.Contains("error=dns_error", error);
        Assert.Contains("listening on 127.0.0.1:8443", relay.Output);
    }

    [Fact]
    public async Task At_information_level_no_log_line_pairs_a_client_with_a_destination()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start([
            "relay", "--connect-plain", "127.0.0.1:0", "--allow", "*:*", "--allow-private", "--map", "origin.test=127.0.0.1",
            "--key", Path.Combine(directory.Path, "relay.pem"),
        ]);
        var port = await relay.WaitForListeningPortAsync();
        for (var i = 0; i < 10; i++)
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
            var target = i % 3 == 0 ? "nowhere.invalid:1" : $"origin.test:{echo.Port}";
            await Loopback.SendAllAsync(socket, System.Text.Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
            var head = await ConnectHarness.ReadHeadAsync(socket);
            Assert.StartsWith("HTTP/1.1 ", head);
        }
        relay.Signal(PassageProcess.SigTerm);
        await relay.WaitForExitAsync(Timeouts.Default);
        foreach (var line in relay.StandardError.Split('\n'))
        {
            var namesDestination = line.Contains("origin.test", StringComparison.Ordinal) || line.Contains("nowhere.invalid", StringComparison.Ordinal);
            var namesClient = Regex.IsMatch(line, @"127\.0\.0\.1:\d{4,5}") && !line.Contains("listening on", StringComparison.Ordinal);
            Assert.False(namesDestination && namesClient, line);
        }
    }

    [GeneratedRegex(@"curl -p -x (?<proxy>\S+) --proxy-cacert (?<cert>\S+) --proxy-pinnedpubkey '(?<pin>[^']+)' (?<url>\S+)")]
    private static partial Regex CurlCommand();
}
