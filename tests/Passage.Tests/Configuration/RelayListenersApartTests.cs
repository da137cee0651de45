using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Configuration;

/// <summary>
/// Two front doors given one address and port: the relay's listeners share a port (SO_REUSEPORT), so both bound and the
/// system handed each some of the other's clients. Refused, naming the setting that repeats another's.
/// </summary>
public sealed class RelayListenersApartTests
{
    private static IReadOnlyList<string> ErrorsOf(params (string Key, string Value)[] values)
    {
        var reader = new SettingsReader([new SettingsLayer("relay.json",
            new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build())]);
        RelaySettings.Read(reader);
        return reader.Errors;
    }

    [Fact]
    public void A_pass_through_and_a_CONNECT_listener_on_one_port_are_refused()
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var key = ("relay:key", directory.File("relay.pem"));
        Assert.Equal(
            "relay.connect: 127.0.0.1:9443 is relay.passthrough's too: listeners on one address and port share its connections, so each would get some of the other's clients (from relay.json)",
            Assert.Single(ErrorsOf(("relay:passthrough:0", "127.0.0.1:9443"), ("relay:routes:*", ":443"), ("relay:connect:0", "127.0.0.1:9443"), key)));
        Assert.Contains("relay.connectPlain: 127.0.0.1:8080 is relay.connect's too",
            Assert.Single(ErrorsOf(("relay:connect:0", "127.0.0.1:8080"), ("relay:connectPlain:0", "127.0.0.1:8080"), key)));
        Assert.Contains("relay.admin: [::1]:9090 is relay.connect's too",
            Assert.Single(ErrorsOf(("relay:connect:0", "[::1]:9090"), ("relay:admin", "[::1]:9090"), key)));

        // Port 0 is a port of its own for each; another address or port is another listener.
        Assert.Empty(ErrorsOf(("relay:connect:0", "127.0.0.1:0"), ("relay:connectPlain:0", "127.0.0.1:0"), ("relay:admin", "127.0.0.1:0"), key));
        Assert.Empty(ErrorsOf(("relay:connect:0", "127.0.0.1:8443"), ("relay:connectPlain:0", "127.0.0.2:8443"), ("relay:admin", "127.0.0.1:9090"), key));
    }
}
