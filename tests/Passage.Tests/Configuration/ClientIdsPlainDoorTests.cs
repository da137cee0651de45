using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Configuration;

/// <summary>
/// <c>relay.clientIds</c> lets in only clients that present a listed node ID in mutual TLS; a plain door has no TLS, so
/// beside it the list would keep no one out there.
/// </summary>
public sealed class ClientIdsPlainDoorTests
{
    private const string ClientId = "ghzjwdyyk7gxz4fwdnivg4nlin6555nx3y4izp4bmm6qeod4inwa";

    private static SettingsLayer Layer(string source, params (string Key, string Value)[] values) =>
        new(source, new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    private static IReadOnlyList<string> Errors(params SettingsLayer[] layers)
    {
        var reader = new SettingsReader(layers);
        RelaySettings.Read(reader);
        return reader.Errors;
    }

    [Fact]
    public void Client_ids_beside_a_plain_door_are_an_error_naming_the_plain_door_and_where_it_was_set()
    {
        var errors = Errors(
            Layer("relay.json", ("relay:connect:0", "127.0.0.1:0"), ("relay:clientIds:0", ClientId)),
            Layer("--connect-plain", ("relay:connectPlain:0", "127.0.0.1:0")));
        var error = Assert.Single(errors);
        Assert.StartsWith("relay.connectPlain: serves without TLS", error);
        Assert.Contains("relay.clientIds", error);
        Assert.EndsWith("(from --connect-plain)", error);
    }

    [Fact]
    public void Client_ids_with_tls_doors_alone_and_a_plain_door_without_client_ids_are_no_error()
    {
        Assert.Empty(Errors(Layer("flags", ("relay:connect:0", "127.0.0.1:0"), ("relay:clientIds:0", ClientId))));
        Assert.Empty(Errors(Layer("flags", ("relay:connect:0", "127.0.0.1:0"), ("relay:connectPlain:0", "127.0.0.1:0"))));
    }
}
