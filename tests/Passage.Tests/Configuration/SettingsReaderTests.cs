using System.Text;
using Microsoft.Extensions.Configuration;
using Passage.Client;
using Passage.Configuration;
using Passage.Identity;
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

    /// <summary>
    /// A key no reader knows has no spelling but the one it was given in: from the environment it was named as the
    /// configuration holds it, <c>Relay.Colour</c> or <c>LOGS</c>, which is in no variable. Each variable is named as set;
    /// a list given to a single value by numbered variables names those, not the key's own, which is set nowhere.
    /// </summary>
    [Fact]
    public void Unknown_keys_from_the_environment_are_named_by_their_variables()
    {
        System.Collections.Hashtable variables = new()
        {
            ["PASSAGE__Relay__Colour"] = "red",
            ["PASSAGE__LOGS__LEVEL"] = "debug",
            ["passage__logs__format"] = "json",
            ["PASSAGE__RELAY__IDLETIMEOUT__0"] = "5s",
        };
        // Keyed as the configuration keys variables: the prefix taken off, each __ a colon.
        var keys = variables.Keys.Cast<string>().Select(v => new KeyValuePair<string, string?>(v[9..].Replace("__", ":", StringComparison.Ordinal), (string?)variables[v]));
        var environment = new SettingsLayer(SettingsLayer.Environment, new ConfigurationBuilder().AddInMemoryCollection(keys).Build()) { Variables = variables };
        var reader = new SettingsReader([environment]);

        RelaySettings.Read(reader);

        Assert.Equal(
            [
                "PASSAGE__LOGS__LEVEL: unknown setting",
                "PASSAGE__Relay__Colour: unknown setting",
                "passage__logs__format: unknown setting",
                "relay.idleTimeout: expected one value, not a list or an object (from PASSAGE__RELAY__IDLETIMEOUT__0)",
            ],
            reader.Errors.Where(e => !e.StartsWith("relay.routes:", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
    }

    /// <summary>
    /// A variable one underscore short of the prefix, <c>PASSAGE_RELAY__MAXTUNNELS</c>, is not read as a setting, and was
    /// passed over without a word: the operator believed the limit set. One that reads as a setting of the reader's
    /// sections (in the configuration's <c>__</c> syntax, or naming a known key) is an error naming it and the variable
    /// probably meant; other programs' variables that begin so (<c>PASSAGE_HOME</c>, a script's <c>PASSAGE_RELAY</c>),
    /// and those of another role's sections, are not Passage's settings, and are left alone.
    /// </summary>
    [Fact]
    public void A_variable_one_underscore_short_of_the_prefix_is_an_error_naming_the_one_meant()
    {
        System.Collections.Hashtable variables = new()
        {
            ["PASSAGE_RELAY__MAXTUNNELS"] = "5",
            ["PASSAGE_Relay__Colour"] = "red",
            ["PASSAGE_RELAY_IDLETIMEOUT"] = "5s",
            ["passage_log__Level"] = "debug",
            ["PASSAGE_RELAY_ALLOW_0"] = "a.test:443",
            ["PASSAGE_HOME"] = "/srv/passage",
            ["PASSAGE_RELAY"] = "relay.example.org",
            ["PASSAGE_RELAY_COLOUR"] = "red",
            ["PASSAGE_CLIENT__TOKEN"] = "t0ken",
            ["PASSAGE_"] = "",
            ["PASSAGE__RELAY__CONNECTPLAIN"] = "127.0.0.1:0",
        };
        var environment = new SettingsLayer(SettingsLayer.Environment,
            new ConfigurationBuilder().AddInMemoryCollection([new("relay:connectPlain", "127.0.0.1:0")]).Build()) { Variables = variables };
        var reader = new SettingsReader([environment]);

        RelaySettings.Read(reader);

        Assert.Equal(
            [
                "PASSAGE_RELAY_ALLOW_0: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__RELAY__ALLOW__0?)",
                "PASSAGE_RELAY_IDLETIMEOUT: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__RELAY__IDLETIMEOUT?)",
                "PASSAGE_RELAY__MAXTUNNELS: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__RELAY__MAXTUNNELS?)",
                "PASSAGE_Relay__Colour: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__Relay__Colour?)",
                "passage_log__Level: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__log__Level?)",
            ],
            reader.Errors);
    }

    /// <summary>
    /// A container platform sets variables named after its services in every pod beside them: Kubernetes, for a service
    /// <c>passage-client-http</c>, <c>PASSAGE_CLIENT_HTTP_PORT=tcp://10.0.0.1:8080</c> and the like, which begin with the
    /// key of the client's HTTP proxies. They are none of Passage's settings, and a client must start beside them; a list
    /// entry's variable one underscore short is still said.
    /// </summary>
    [Fact]
    public void Variables_a_container_platform_names_after_a_service_are_left_alone()
    {
        System.Collections.Hashtable variables = new()
        {
            ["PASSAGE_CLIENT_HTTP_SERVICE_HOST"] = "10.0.0.1",
            ["PASSAGE_CLIENT_HTTP_SERVICE_PORT"] = "8080",
            ["PASSAGE_CLIENT_HTTP_SERVICE_PORT_PROXY"] = "8080",
            ["PASSAGE_CLIENT_HTTP_PORT"] = "tcp://10.0.0.1:8080",
            ["PASSAGE_CLIENT_HTTP_PORT_8080_TCP"] = "tcp://10.0.0.1:8080",
            ["PASSAGE_CLIENT_HTTP_PORT_8080_TCP_PROTO"] = "tcp",
            ["PASSAGE_CLIENT_HTTP_PORT_8080_TCP_PORT"] = "8080",
            ["PASSAGE_CLIENT_HTTP_PORT_8080_TCP_ADDR"] = "10.0.0.1",
            ["PASSAGE_CLIENT_RELAYS_1"] = "relay.example.org:8443",
        };
        var environment = new SettingsLayer(SettingsLayer.Environment,
            new ConfigurationBuilder().AddInMemoryCollection([new("client:relays:0", $"{NodeIdentity.Create().NodeId}@127.0.0.1:8443")]).Build()) { Variables = variables };
        var reader = new SettingsReader([environment]);

        ClientSettings.Read(reader);

        Assert.Equal(
            ["PASSAGE_CLIENT_RELAYS_1: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__CLIENT__RELAYS__1?)"],
            reader.Errors);
    }
}
