using Microsoft.Extensions.Configuration;
using Passage.Configuration;

namespace Passage.Tests.Configuration;

/// <summary>A listen address that is none is named where it was set, as every other bad value is.</summary>
public sealed class ListenEndpointSourceTests
{
    [Fact]
    public void A_bad_listen_address_names_the_flag_the_variable_or_the_file_that_set_it()
    {
        var file = new SettingsLayer("relay.json", new ConfigurationBuilder().AddInMemoryCollection([new("relay:admin", "nowhere:1")]).Build());
        var variables = new Dictionary<string, string?> { ["PASSAGE__RELAY__ADMIN"] = "127.0.0.1:99999" };
        var environment = new SettingsLayer(SettingsLayer.Environment, new ConfigurationBuilder().AddInMemoryCollection([new("relay:admin", "127.0.0.1:99999")]).Build())
        {
            Variables = new System.Collections.Hashtable(variables),
        };
        var flags = new SettingsLayer(SettingsLayer.Flags, new ConfigurationBuilder().AddInMemoryCollection([new("relay:admin", "example.org:9090")]).Build())
        {
            Names = new Dictionary<string, string> { ["relay:admin"] = "--admin" },
        };

        Assert.Null(new SettingsReader([file]).GetListenEndpoint("relay:admin"));
        Assert.Equal("relay.admin: 'nowhere:1': 'nowhere' is not an IP address (listen on an address, e.g. 127.0.0.1 or [::]) (from relay.json)",
            Assert.Single(ErrorsOf(file)));
        Assert.EndsWith("(from PASSAGE__RELAY__ADMIN)", Assert.Single(ErrorsOf(file, environment)));
        Assert.EndsWith("(from --admin)", Assert.Single(ErrorsOf(file, environment, flags)));
    }

    private static IReadOnlyList<string> ErrorsOf(params SettingsLayer[] layers)
    {
        var reader = new SettingsReader(layers);
        reader.GetListenEndpoint("relay:admin");
        return reader.Errors;
    }
}
