using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Relay;

/// <summary>The resolver choice as <c>config check</c> prints it, and as the printed settings read back.</summary>
public sealed class RelaySettingsResolverTests
{
    /// <summary>
    /// The mode is printed as configured. Auto was printed as the resolver it chose on the checking host, and the printed
    /// settings, read back, pinned that choice, which auto makes from nsswitch.conf at each start.
    /// </summary>
    [Theory]
    [InlineData("", "auto")]
    [InlineData(", \"dnsResolver\": \"auto\", \"dnsServers\": [\"127.0.0.1:5353\"]", "auto")]
    [InlineData(", \"dnsResolver\": \"builtin\"", "builtin")]
    [InlineData(", \"dnsResolver\": \"system\"", "system")]
    public void The_resolver_mode_is_printed_as_configured_and_reads_back_the_same(string resolver, string printed)
    {
        var options = Read("{ \"relay\": { \"connectPlain\": [\"127.0.0.1:0\"]" + resolver + " } }");
        var json = RelaySettings.ToJson(options, new Passage.Telemetry.LogOptions());
        Assert.Equal(printed, JsonDocument.Parse(json).RootElement.GetProperty("relay").GetProperty("dnsResolver").GetString());

        var again = Read(json);
        Assert.Equal(options.Destinations.DnsResolverAuto, again.Destinations.DnsResolverAuto);
        Assert.Equal(options.Destinations.Dns is null, again.Destinations.Dns is null);
        Assert.Equal(options.Destinations.Dns?.GivenServers, again.Destinations.Dns?.GivenServers);
    }

    private static RelayOptions Read(string json)
    {
        var reader = new SettingsReader([new SettingsLayer("relay.json", new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build())]);
        var options = RelaySettings.Read(reader);
        Passage.Telemetry.LogOptions.Read(reader, journalAttached: false);
        Assert.Empty(reader.Errors);
        return options;
    }
}
