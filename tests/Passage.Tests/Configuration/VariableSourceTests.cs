using Microsoft.Extensions.Configuration;
using Passage.Configuration;

namespace Passage.Tests.Configuration;

/// <summary>An error about a key set by variables below its own names those variables, not its own, which is set nowhere.</summary>
public sealed class VariableSourceTests
{
    private static SettingsReader Reader(params (string Name, string Value)[] variables)
    {
        var environment = new System.Collections.Hashtable();
        foreach (var (name, value) in variables)
        {
            environment[name] = value;
        }
        // As the configuration reads them: the prefix removed, each __ a colon.
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(variables.Select(v =>
            new KeyValuePair<string, string?>(v.Name["PASSAGE__".Length..].Replace("__", ":", StringComparison.Ordinal), v.Value))).Build();
        return new SettingsReader([new SettingsLayer(SettingsLayer.Environment, configuration) { Variables = environment }]);
    }

    [Fact]
    public void A_list_given_as_an_object_by_variables_names_them()
    {
        var reader = Reader(("PASSAGE__relay__allow__01", "a.example:443"), ("PASSAGE__RELAY__ALLOW__x", "b.example:443"));
        reader.GetList("relay:allow");
        Assert.Equal("relay.allow: expected a list, not an object (from PASSAGE__RELAY__ALLOW__x, PASSAGE__relay__allow__01)", Assert.Single(reader.Errors));
    }

    [Fact]
    public void A_map_given_as_a_list_by_variables_names_them()
    {
        var reader = Reader(("PASSAGE__RELAY__ROUTES__0", "a.example=b.example:443"));
        reader.GetMap("relay:routes");
        Assert.Equal("relay.routes: expected an object of name: value pairs, not a list (from PASSAGE__RELAY__ROUTES__0)", Assert.Single(reader.Errors));
    }

    [Fact]
    public void A_key_s_own_variable_is_named_where_it_is_set()
    {
        var reader = Reader(("PASSAGE__RELAY__IDLETIMEOUT", "soon"));
        reader.GetDuration("relay:idleTimeout", TimeSpan.FromMinutes(5));
        Assert.EndsWith("(from PASSAGE__RELAY__IDLETIMEOUT)", Assert.Single(reader.Errors));
    }
}
