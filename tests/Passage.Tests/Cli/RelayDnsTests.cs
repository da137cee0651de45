using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Cli;

/// <summary>The relay process looking destination names up with its own resolver, against a real DNS server on loopback.</summary>
public sealed class RelayDnsTests
{
    [Fact]
    public async Task A_name_is_looked_up_again_when_its_ttl_runs_out_and_not_before_when_it_is_long()
    {
        await using var dns = new TestDnsServer();
        await using var first = new EchoServer(IPAddress.Loopback, greeting: "first"u8.ToArray());
        await using var second = new EchoServer(IPAddress.Parse("127.0.0.2"), first.Port, "second"u8.ToArray());
        dns.SetAddress("short.passage.test", 1, "127.0.0.1");
        dns.SetAddress("long.passage.test", 300, "127.0.0.1");
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--dns-server", dns.EndPoint.ToString()));
        var port = await ConnectHarness.PlainPortAsync(relay);

        Assert.Equal("first", await GreetingThroughAsync(port, $"short.passage.test:{first.Port}"));
        Assert.Equal("first", await GreetingThroughAsync(port, $"long.passage.test:{first.Port}"));
        dns.SetAddress("short.passage.test", 1, "127.0.0.2");
        dns.SetAddress("long.passage.test", 300, "127.0.0.2");

        // The short answer (1 s) runs out well within the cache's maximum age (30 s); the long one does not.
        var greeting = "";
        for (var i = 0; i < 150 && greeting != "second"; i++)
        {
            await Task.Delay(100);
            greeting = await GreetingThroughAsync(port, $"short.passage.test:{first.Port}");
        }
        Assert.Equal("second", greeting);
        Assert.Equal("first", await GreetingThroughAsync(port, $"long.passage.test:{first.Port}"));
        Assert.Equal(2, dns.Count("long.passage.test"));
        Assert.True(dns.Count("short.passage.test") >= 4);
        Assert.Contains($"DNS servers {dns.EndPoint} (from relay.dnsServers)", relay.StandardError);
    }

    [Fact]
    public async Task A_name_that_does_not_exist_is_502_dns_error_and_a_silent_server_504_dns_timeout()
    {
        await using var dns = new TestDnsServer();
        dns.Silent["silent.passage.test"] = true;
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(
            directory.Path, "--dns-server", dns.EndPoint.ToString(), "--connect-timeout", "1s"));
        var port = await ConnectHarness.PlainPortAsync(relay);

        var (missing, missingHead) = await ConnectHarness.RequestTunnelAsync(port, "missing.passage.test:443");
        missing.Dispose();
        Assert.StartsWith("HTTP/1.1 502", missingHead);
        Assert.Contains("error=dns_error; details=\"HostNotFound\"", missingHead);

        var (silent, silentHead) = await ConnectHarness.RequestTunnelAsync(port, "silent.passage.test:443");
        silent.Dispose();
        Assert.StartsWith("HTTP/1.1 504", silentHead);
        Assert.Contains("error=dns_timeout", silentHead);
    }

    /// <summary>
    /// getaddrinfo answers EAI_AGAIN both for a server that never answered and for one that answered SERVFAIL. With
    /// resolv.conf's defaults the first comes at the connect timeout, and the relay answered 502 or 504 by which came
    /// first; with a shorter resolver timeout, always 502. The relay tells the two apart by how long the lookup took.
    /// Here the relay runs in a mount namespace whose resolv.conf names a server on port 53 of a loopback address.
    /// </summary>
    [MountNamespaceFact("port 53 and a resolv.conf of its own")]
    public async Task Through_the_system_resolver_a_silent_server_is_504_dns_timeout_and_a_failing_one_502_dns_error()
    {
        var address = new IPAddress([127, 0, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(2, 255)]);
        await using var dns = new TestDnsServer(new IPEndPoint(address, 53));
        dns.Silent["silent.passage.test"] = true;
        using var directory = new TemporaryDirectory();
        var resolvConf = Path.Combine(directory.Path, "resolv.conf");
        await File.WriteAllTextAsync(resolvConf, $"nameserver {address}\noptions timeout:2 attempts:1\n");
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--connect-timeout", "10s"),
            new Dictionary<string, string?> { ["PASSAGE__RELAY__DNSRESOLVER"] = "system" },
            resolvConf: resolvConf);
        var port = await ConnectHarness.PlainPortAsync(relay);
        Assert.Contains("Destination names: the system resolver", relay.StandardError);

        // Silent for 2 s, well within the connect timeout: a timeout all the same.
        var (silent, silentHead) = await ConnectHarness.RequestTunnelAsync(port, "silent.passage.test:443");
        silent.Dispose();
        Assert.True(dns.Count("silent.passage.test") >= 1, "the system resolver never asked the test's server");
        Assert.StartsWith("HTTP/1.1 504", silentHead);
        Assert.Contains("error=dns_timeout", silentHead);

        dns.FailWith = 2;
        var (failing, failingHead) = await ConnectHarness.RequestTunnelAsync(port, "failing.passage.test:443");
        failing.Dispose();
        Assert.True(dns.Count("failing.passage.test") >= 1);
        Assert.StartsWith("HTTP/1.1 502", failingHead);
        Assert.Contains("error=dns_error; details=\"TryAgain\"", failingHead);
    }

    private static async Task<string> GreetingThroughAsync(int relayPort, string target)
    {
        var (socket, head) = await ConnectHarness.RequestTunnelAsync(relayPort, target);
        using var _ = socket;
        Assert.StartsWith("HTTP/1.1 200", head);
        socket.Shutdown(SocketShutdown.Send);
        return Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(socket));
    }
}
