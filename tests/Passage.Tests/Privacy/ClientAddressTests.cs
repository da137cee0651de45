using System.Net;
using System.Text;
using Passage.Tests.Client;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Tests.Tunnel;

namespace Passage.Tests.Privacy;

/// <summary>
/// The promise, "the destination knows what you say but not who you are", across real addresses: curl runs in a network
/// namespace of its own (10.213.x.2), the Passage processes in the test's namespace listen on its side of the link
/// (10.213.x.1), and the destination on 127.0.0.1 keeps the address each connection came from and every byte it sent.
/// On loopback every party is 127.0.0.1, so no other test can tell whether a destination learns the client's address.
/// Each path checks that the destination was reached from 127.0.0.1, that the client's address is nowhere in its bytes
/// (no Forwarded, X-Forwarded-For, PROXY header, ...), and that no line of a Passage log at the default level names the
/// client (the README's promise for logs, see <see cref="AssertClientUnknownAsync"/>). Skipped where namespaces cannot
/// be made (<see cref="NetworkNamespace.WhyUnavailable"/>); CI runs as root and installs iproute2.
/// </summary>
public sealed class ClientAddressTests
{
    private const string Credentials = "alice:wonder";

    /// <summary>The control: without Passage between them the destination does see the client, so the checks below can fail.</summary>
    [NetworkNamespaceFact]
    public async Task A_destination_reached_straight_from_the_namespace_sees_the_client_address()
    {
        using var network = NetworkNamespace.Create();
        await using var origin = new RecordingOrigin(network.HostAddress);

        var direct = await network.CurlAsync($"http://{network.HostAddress}:{origin.Port}/");

        Assert.True(direct.ExitCode == 0, direct.StandardError);
        Assert.Equal($"seen from {network.Address}\n", direct.StandardOutput);
        var connection = Assert.Single(await origin.WaitForEndedAsync(1));
        Assert.Equal(network.Address, connection.Peer.Address);
    }

    [NetworkNamespaceFact]
    public async Task Through_the_connect_relay_plain_and_over_tls_the_destination_sees_the_relay_not_the_client()
    {
        using var network = NetworkNamespace.Create();
        await using var origin = new RecordingOrigin();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(
            directory.Path, "--connect-plain", $"{network.HostAddress}:0", "--insecure-plain", "--connect", $"{network.HostAddress}:0",
            "--map", "origin.test=127.0.0.1"));
        var plainPort = await relay.WaitForPortAfterAsync($"connect-plain listening on {network.HostAddress}:");
        var tlsPort = await relay.WaitForPortAfterAsync($"connect listening on {network.HostAddress}:");
        var url = $"http://origin.test:{origin.Port}/";

        var plain = await network.CurlAsync("-p", "-x", $"http://{network.HostAddress}:{plainPort}", url);
        // The certificate made at this start names the addresses the TLS door binds, this one too.
        var tls = await network.CurlAsync(
            "-p", "-x", $"https://{network.HostAddress}:{tlsPort}", "--proxy-cacert", Path.Combine(directory.Path, "relay.crt"), url);

        Assert.True(plain.ExitCode == 0, plain.StandardError + relay.Output);
        Assert.True(tls.ExitCode == 0, tls.StandardError + relay.Output);
        Assert.Equal("seen from 127.0.0.1\n", plain.StandardOutput);
        Assert.Equal("seen from 127.0.0.1\n", tls.StandardOutput);
        await AssertClientUnknownAsync(network, origin, 2, [relay]);
    }

    [NetworkNamespaceFact]
    public async Task Through_the_passthrough_relay_the_destination_sees_the_relay_not_the_client()
    {
        using var network = NetworkNamespace.Create();
        await using var tlsOrigin = await TestOrigin.StartAsync("origin.test");
        // The destination's door: what reaches the TLS origin passes here first, as the relay sent it.
        await using var origin = new RecordingOrigin(forwardTo: new IPEndPoint(IPAddress.Loopback, tlsOrigin.Port));
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", $"{network.HostAddress}:0", "--route", $"origin.test=127.0.0.1:{origin.Port}", "--allow-private",
        ]);
        var port = await relay.WaitForListeningPortAsync(network.HostAddress.ToString());

        var result = await network.CurlAsync(
            "--connect-to", $"origin.test:443:{network.HostAddress}:{port}", "--cacert", tlsOrigin.CertificatePath, "https://origin.test/");

        Assert.True(result.ExitCode == 0, result.StandardError + relay.Output);
        Assert.Equal("origin origin.test saw remote=127.0.0.1\n", result.StandardOutput);
        await AssertClientUnknownAsync(network, origin, 1, [relay]);
    }

    [NetworkNamespaceFact]
    public async Task Through_the_client_and_a_relay_the_destination_sees_the_relay_not_the_application()
    {
        using var network = NetworkNamespace.Create();
        await using var origin = new RecordingOrigin();
        await using var relay = await RelayProcess.StartAsync();
        // Beyond loopback the client's doors take only applications with credentials (or --insecure-open).
        await using var client = PassageProcess.Start([
            "client", "--relay", relay.Address.ToString(), "--socks", $"{network.HostAddress}:0", "--http", $"{network.HostAddress}:0",
            "--socks-user", Credentials, "--http-user", Credentials,
        ]);
        var socksPort = await client.WaitForPortAfterAsync($"socks listening on {network.HostAddress}:");
        var httpPort = await client.WaitForPortAfterAsync($"http-proxy listening on {network.HostAddress}:");
        var url = $"http://origin.test:{origin.Port}/";

        var socks = await network.CurlAsync("--socks5-hostname", $"{Credentials}@{network.HostAddress}:{socksPort}", url);
        // Forwarded by the client's HTTP proxy, which writes the head the origin gets.
        var forwarded = await network.CurlAsync("-x", $"http://{network.HostAddress}:{httpPort}", "--proxy-user", Credentials, url);
        var tunneled = await network.CurlAsync("-p", "-x", $"http://{network.HostAddress}:{httpPort}", "--proxy-user", Credentials, url);

        foreach (var result in new[] { socks, forwarded, tunneled })
        {
            Assert.True(result.ExitCode == 0, result.StandardError + client.Output);
            Assert.Equal("seen from 127.0.0.1\n", result.StandardOutput);
        }
        await AssertClientUnknownAsync(network, origin, 3, [client, relay.Process]);
    }

    [NetworkNamespaceFact]
    public Task Through_the_tunnel_the_backend_does_not_learn_the_application_address() =>
        RequestThroughTunnelAsync(addForwarded: false, (network, backend, ends) => AssertClientUnknownAsync(network, backend, 1, ends));

    /// <summary>What the README says <c>system.addForwarded</c> does, and proof that the check of the bytes above can fail.</summary>
    [NetworkNamespaceFact]
    public Task Through_the_tunnel_with_add_forwarded_the_backend_is_told_the_application_address() =>
        RequestThroughTunnelAsync(addForwarded: true, async (network, backend, _) =>
        {
            var connection = Assert.Single(await backend.WaitForEndedAsync(1));
            Assert.Equal(IPAddress.Loopback, connection.Peer.Address);
            Assert.True(Names(connection.Received, network.Address), Encoding.Latin1.GetString(connection.Received));
        });

    /// <summary>
    /// Sends curl's request from the namespace through a tunnel to a recording backend, then runs <paramref name="check"/>
    /// with both ends still up. The request comes in at a client end beside the pair's own, listening on the namespace's
    /// link at the default log level, with <c>system.addForwarded</c> at its default unless <paramref name="addForwarded"/>.
    /// </summary>
    private static async Task RequestThroughTunnelAsync(bool addForwarded, Func<NetworkNamespace, RecordingOrigin, PassageProcess[], Task> check)
    {
        using var network = NetworkNamespace.Create();
        await using var backend = new RecordingOrigin();
        await using var pair = await TunnelPair.StartAsync(backendPort: backend.Port);
        var config = Path.Combine(pair.Directory, "namespace-client.json");
        await File.WriteAllTextAsync(config, TunnelPair.ClientConfig(pair.ServerId, pair.TunnelPort, pair.ClientKey, ""));
        var environment = new Dictionary<string, string?> { ["PASSAGE__GENERAL__HTTPBINDADDRESS"] = $"{network.HostAddress}:0" };
        if (addForwarded)
        {
            environment["PASSAGE__SYSTEM__ADDFORWARDED"] = "true";
        }
        await using var clientEnd = PassageProcess.Start(["tunnel", "--config", config], environment);
        var port = await clientEnd.WaitForListeningPortAsync(network.HostAddress.ToString());
        await clientEnd.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal));

        var result = await network.CurlAsync($"http://{network.HostAddress}:{port}/path");

        Assert.True(result.ExitCode == 0, result.StandardError + clientEnd.Output);
        Assert.Equal("seen from 127.0.0.1\n", result.StandardOutput);
        await check(network, backend, [clientEnd, pair.Server]);
    }

    /// <summary>
    /// The destination's <paramref name="count"/> connections came from 127.0.0.1 and hold nothing of the client's address,
    /// and, once <paramref name="processes"/> have stopped, no line they logged names it. The README promises that no line
    /// at the default level pairs a client with a destination, and says how: the lines about one connection, which do
    /// pair them through its id, are Debug only. So no line of this traffic may name the client at all, with the
    /// destination or without.
    /// </summary>
    private static async Task AssertClientUnknownAsync(NetworkNamespace network, RecordingOrigin origin, int count, PassageProcess[] processes)
    {
        var connections = await origin.WaitForEndedAsync(count);
        Assert.Equal(count, connections.Count);
        foreach (var connection in connections)
        {
            Assert.NotEqual(network.Address, connection.Peer.Address);
            Assert.Equal(IPAddress.Loopback, connection.Peer.Address);
            Assert.False(Names(connection.Received, network.Address), Encoding.Latin1.GetString(connection.Received));
        }
        foreach (var process in processes)
        {
            process.Signal(PassageProcess.SigTerm);
            await process.WaitForExitAsync(Timeouts.Default);
            Assert.Contains("listening on", process.Output);
            foreach (var line in process.Output.Split('\n'))
            {
                Assert.False(line.Contains(network.Address.ToString(), StringComparison.Ordinal), $"the client's address logged at the default level: {line}");
            }
        }
    }

    /// <summary>Whether <paramref name="bytes"/> hold <paramref name="address"/>, as text or as the four bytes a PROXY v2 header carries.</summary>
    private static bool Names(byte[] bytes, IPAddress address) =>
        Encoding.Latin1.GetString(bytes).Contains(address.ToString(), StringComparison.Ordinal)
        || bytes.AsSpan().IndexOf(address.GetAddressBytes()) >= 0;
}
