using Passage.Tests.Infrastructure;

namespace Passage.Tests.Privacy;

/// <summary>
/// The lines a relay writes at the default level when requests fail: an upstream that refuses is a warning naming the
/// destination, so no line may name the client that asked for it. curl runs in a network namespace of its own, so its
/// address (10.213.x.2) is one nothing else in the test has; the relay listens on the test's side of the link.
/// Refusals the relay decides alone (a destination its policy refuses, a request it does not serve, a ClientHello naming
/// no route) are counted, not said, at the default level. Skipped where namespaces cannot be made.
/// </summary>
public sealed class FailedRequestLogTests
{
    [NetworkNamespaceFact]
    public async Task Failed_connects_and_pass_through_connections_log_their_destination_never_their_client()
    {
        using var network = NetworkNamespace.Create();
        using var directory = new TemporaryDirectory();
        var closed = Loopback.ClosedPort();
        var host = network.HostAddress.ToString();
        await using var relay = PassageProcess.Start([
            "relay", "--connect-plain", $"{host}:0", "--insecure-plain", "--passthrough", $"{host}:0",
            "--key", Path.Combine(directory.Path, "relay.pem"), "--allow", "*:*", "--allow-private",
            "--map", "origin.test=127.0.0.1", "--map", "metadata.test=169.254.169.254",
            "--route", $"down.test=127.0.0.1:{closed}",
        ]);
        var connectPort = await relay.WaitForPortAfterAsync($"connect-plain listening on {host}:");
        var passthroughPort = await relay.WaitForPortAfterAsync($"passthrough listening on {host}:");
        var proxy = $"http://{host}:{connectPort}";

        // The status of the CONNECT (http_connect), and of the request sent to the proxy as it is (http_code).
        var refused = await network.CurlAsync("-s", "-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", proxy, $"http://origin.test:{closed}/");
        var prohibited = await network.CurlAsync("-s", "-o", "/dev/null", "-w", "%{http_connect}", "-p", "-x", proxy, "http://metadata.test/");
        var notConnect = await network.CurlAsync("-s", "-o", "/dev/null", "-w", "%{http_code}", "-x", proxy, $"http://origin.test:{closed}/");
        foreach (var name in new[] { "down.test", "none.test" })
        {
            // Neither gets a TLS answer: the first's upstream refuses, the second has no route.
            await network.CurlAsync("-s", "-k", "--connect-to", $"{name}:443:{host}:{passthroughPort}", $"https://{name}/");
        }

        Assert.Equal("502", refused.StandardOutput);
        Assert.Equal("403", prohibited.StandardOutput);
        Assert.Equal("405", notConnect.StandardOutput);
        relay.Signal(PassageProcess.SigTerm);
        await relay.WaitForExitAsync(Timeouts.Default);
        // The destinations were named (the relay's log is not simply silent)...
        Assert.Contains($"Upstream origin.test:{closed} unavailable", relay.StandardError);
        Assert.Contains($"Upstream 127.0.0.1:{closed} unavailable", relay.StandardError);
        // ...and no line names the client.
        foreach (var line in relay.Output.Split('\n'))
        {
            Assert.False(line.Contains(network.Address.ToString(), StringComparison.Ordinal), $"the client's address logged at the default level: {line}");
        }
    }
}
