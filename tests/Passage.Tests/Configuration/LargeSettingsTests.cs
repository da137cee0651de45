using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Configuration;

/// <summary>
/// Settings with many entries (a file may hold tens of thousands of routes or rules): the configuration finds a key's
/// children by going through every key, so asking it once per entry made the check quadratic in the entries. Counted by
/// how often the configuration is asked, not timed.
/// </summary>
public sealed class LargeSettingsTests
{
    private const int Entries = 5000;

    [Fact]
    public void Checking_the_keys_of_a_large_map_or_list_asks_for_children_a_bounded_number_of_times()
    {
        var values = new Dictionary<string, string?> { ["relay:passthrough:0"] = "127.0.0.1:0", ["relay:idleTimeout"] = "5m" };
        for (var i = 0; i < Entries; i++)
        {
            values[$"relay:routes:h{i}.example"] = "b.example:443";
            values[$"relay:deny:{i}"] = $"d{i}.example:443";
        }
        var provider = new CountingProvider(values);
        var reader = new SettingsReader([new SettingsLayer("relay.json", new ConfigurationRoot([provider]))]);

        reader.CheckUnknownKeys(RelaySettings.KnownKeys);

        Assert.Empty(reader.Errors);
        Assert.InRange(provider.ChildKeyLookups, 1, 100);
    }

    /// <summary>
    /// Unknown keys and values given lists are still said once each, of the key, whatever they hold; what is in them is not
    /// looked at.
    /// </summary>
    [Fact]
    public void Many_unknown_keys_are_each_said_once_without_looking_into_them()
    {
        var values = new Dictionary<string, string?> { ["relay:passthrough:0"] = "127.0.0.1:0" };
        for (var i = 0; i < Entries; i++)
        {
            values[$"relay:bogus:{i}"] = "x";
            values[$"relay:idleTimeout:{i}"] = "5m";
            values[$"colour{i}"] = "red";
        }
        var provider = new CountingProvider(values);
        var reader = new SettingsReader([new SettingsLayer("relay.json", new ConfigurationRoot([provider]))]);

        reader.CheckUnknownKeys(RelaySettings.KnownKeys);

        Assert.Equal(Entries + 2, reader.Errors.Count);
        Assert.Contains("relay.bogus: unknown setting (from relay.json)", reader.Errors);
        Assert.Contains("relay.idleTimeout: expected one value, not a list or an object (from relay.json)", reader.Errors);
        Assert.Contains("colour17: unknown setting (from relay.json)", reader.Errors);
        Assert.InRange(provider.ChildKeyLookups, 1, 100);
    }

    /// <summary>An in-memory configuration that counts the lookups of a key's children, each of which goes through every key.</summary>
    private sealed class CountingProvider : ConfigurationProvider
    {
        public CountingProvider(IDictionary<string, string?> values)
        {
            foreach (var (key, value) in values)
            {
                Data[key] = value;
            }
        }

        public int ChildKeyLookups { get; private set; }

        public override IEnumerable<string> GetChildKeys(IEnumerable<string> earlierKeys, string? parentPath)
        {
            ChildKeyLookups++;
            return base.GetChildKeys(earlierKeys, parentPath);
        }
    }
}
