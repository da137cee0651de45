using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay.Passthrough;
using Passage.Tunnel;

namespace Passage.Tests.Configuration;

/// <summary>
/// A bad value of the tunnel's or the pass-through relay's settings is named where it was set, as the others are: the
/// peer, an address, the watchdog factor, the protocol, the pass-through upstream.
/// </summary>
public sealed class SettingSourceTests
{
    [Fact]
    public void Bad_tunnel_values_name_the_file_that_set_them()
    {
        var file = new SettingsLayer("tunnel.json", new ConfigurationBuilder().AddInMemoryCollection([
            new("general:mode", "client"), new("general:peer", "not-an-id"), new("general:connectAddress", "nowhere"),
            new("system:watchdogFactor", "2"), new("tls:key", "client.pem"), new("transport:protocol", "h3"),
        ]).Build());
        var reader = new SettingsReader([file]);

        TunnelSettings.Read(reader, quicSupported: false);

        foreach (var key in new[] { "general.peer", "general.connectAddress", "system.watchdogFactor", "transport.protocol" })
        {
            var error = Assert.Single(reader.Errors, e => e.StartsWith(key + ":", StringComparison.Ordinal));
            Assert.EndsWith("(from tunnel.json)", error);
        }
    }

    [Fact]
    public void A_bad_passthrough_upstream_names_the_flag_that_set_it()
    {
        var flags = new SettingsLayer(SettingsLayer.Flags, new ConfigurationBuilder().AddInMemoryCollection([
            new("relay:passthrough:0", "127.0.0.1:0"), new("relay:upstream", "nowhere"),
        ]).Build())
        {
            Names = new Dictionary<string, string> { ["relay:upstream"] = "--upstream" },
        };
        var reader = new SettingsReader([flags]);

        PassthroughSettings.Read(reader);

        var error = Assert.Single(reader.Errors, e => e.StartsWith("relay.upstream:", StringComparison.Ordinal));
        Assert.EndsWith("(from --upstream)", error);
    }
}
