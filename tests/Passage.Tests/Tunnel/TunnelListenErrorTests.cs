using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>An end that cannot listen where its settings say is one line naming the address and the setting.</summary>
public sealed class TunnelListenErrorTests
{
    [Theory]
    [InlineData("server", "bindAddress", "general.bindAddress")]
    [InlineData("client", "httpBindAddress", "general.httpBindAddress")]
    public async Task An_address_not_on_this_machine_is_named_with_its_setting(string mode, string field, string key)
    {
        // 192.0.2.0/24 is for documentation (RFC 5737): no interface here has it, so bind(2) fails with EADDRNOTAVAIL,
        // whose words alone ("Cannot assign requested address") named neither the address nor which setting held it.
        using var directory = new TemporaryDirectory();
        var peer = NodeIdentity.Create().NodeId;
        var other = mode == "server"
            ? $"\"httpConnectAddress\": \"127.0.0.1:{Loopback.ClosedPort()}\""
            : $"\"connectAddress\": \"127.0.0.1:{Loopback.ClosedPort()}\"";
        var config = System.IO.Path.Combine(directory.Path, "tunnel.json");
        await File.WriteAllTextAsync(config, $$"""
            {
              "general": { "mode": "{{mode}}", "peer": "{{peer}}", "{{field}}": "192.0.2.7:20010", {{other}} },
              "tls": { "key": "{{System.IO.Path.Combine(directory.Path, "end.pem")}}" }
            }
            """);

        var (exit, _, stderr) = await PassageProcess.RunAsync(["tunnel", "--config", config]);

        Assert.Equal(1, exit);
        Assert.Contains($"Cannot start: cannot listen on 192.0.2.7:20010 ({key}): ", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }
}
