using System.Text;
using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Configuration;

public sealed class SettingsReaderTests
{
    private static SettingsReader Reader(string json) =>
        new([new SettingsLayer("passage.json", new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build())]);

    [Fact]
    public void A_map_written_as_a_list_is_an_error_naming_the_key_not_a_map_of_indexes()
    {
        var reader = Reader("""{ "relay": { "routes": ["api.example.org=:443"] } }""");
        RelaySettings.Read(reader);
        Assert.Contains("relay.routes: expected an object of name: value pairs, not a list (from passage.json)", reader.Errors);
        Assert.DoesNotContain(reader.Errors, e => e.Contains("relay.routes.0", StringComparison.Ordinal));
    }

    [Fact]
    public void Names_that_are_numbers_but_not_the_indexes_of_a_list_are_a_map()
    {
        var reader = Reader("""{ "m": { "1": "a", "7": "b" } }""");
        var map = reader.GetMap("m");
        Assert.Empty(reader.Errors);
        Assert.Equal(["1=a", "7=b"], map.Select(e => $"{e.Name}={e.Value}"));
    }

    [Fact]
    public void A_map_entry_holding_an_object_is_an_error_and_left_out()
    {
        var reader = Reader("""{ "m": { "a": { "b": "c" }, "d": "e" } }""");
        var map = reader.GetMap("m");
        Assert.Equal("m.a: expected a text value, not an object or list (from passage.json)", Assert.Single(reader.Errors));
        Assert.Equal("d", Assert.Single(map).Name);
    }

    /// <summary>
    /// Of variables that differ only in case, each sets the key and the configuration keeps one, in an order that differs
    /// from run to run: an error about the value names the variable that holds it (it named the upper-case one whatever it
    /// held, so that the operator looked at a value the error did not quote).
    /// </summary>
    [Theory]
    [InlineData("soon", "relay.idleTimeout", "PASSAGE__RELAY__idleTimeout")]
    [InlineData("later", "relay.idleTimeout", "PASSAGE__RELAY__IDLETIMEOUT")]
    [InlineData("now", "relay.idleTimeout", "PASSAGE__RELAY__IdleTimeout")]
    [InlineData("bad/", "relay.deny[0]", "PASSAGE__RELAY__Deny__0")]
    [InlineData("worse/", "relay.deny[0]", "PASSAGE__RELAY__DENY__0")]
    public void An_error_names_the_variable_that_holds_the_value_read(string value, string displayKey, string variable)
    {
        var key = displayKey.Replace("[0]", ":0", StringComparison.Ordinal).Replace('.', ':');
        var layer = new SettingsLayer(SettingsLayer.Environment, new ConfigurationBuilder().AddInMemoryCollection([new(key, value)]).Build())
        {
            Variables = new System.Collections.Hashtable
            {
                ["PASSAGE__RELAY__IDLETIMEOUT"] = "later",
                ["PASSAGE__RELAY__idleTimeout"] = "soon",
                ["PASSAGE__RELAY__IdleTimeout"] = "now",
                ["PASSAGE__RELAY__DENY__0"] = "worse/",
                ["PASSAGE__RELAY__Deny__0"] = "bad/",
            },
        };

        Assert.Equal(variable, layer.SourceOf(displayKey));
    }
}
