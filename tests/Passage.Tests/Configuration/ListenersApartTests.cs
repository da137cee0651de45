using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;
using Passage.Tunnel;

namespace Passage.Tests.Configuration;

/// <summary>
/// Two listeners given one address and port: the relay's front doors share a port (SO_REUSEPORT), so both bound and the
/// system handed each some of the other's clients; an admin listener's start failed where config check had passed it.
/// Refused, naming the setting that repeats another's.
/// </summary>
public sealed class ListenersApartTests
{
    private static IReadOnlyList<string> ErrorsOf(params (string Key, string Value)[] values) => ErrorsOf(r => RelaySettings.Read(r), values);

    private static IReadOnlyList<string> ErrorsOf(Action<SettingsReader> read, params (string Key, string Value)[] values)
    {
        var reader = new SettingsReader([new SettingsLayer("relay.json",
            new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build())]);
        read(reader);
        return reader.Errors;
    }

    [Fact]
    public void A_pass_through_and_a_CONNECT_listener_on_one_port_are_refused()
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var key = ("relay:key", directory.File("relay.pem"));
        Assert.Equal(
            "relay.connect: 127.0.0.1:9443 is relay.passthrough's too: one address and port serves one listener (two would share its connections, or the second could not listen) (from relay.json)",
            Assert.Single(ErrorsOf(("relay:passthrough:0", "127.0.0.1:9443"), ("relay:routes:*", ":443"), ("relay:connect:0", "127.0.0.1:9443"), key)));
        Assert.Contains("relay.connectPlain: 127.0.0.1:8080 is relay.connect's too",
            Assert.Single(ErrorsOf(("relay:connect:0", "127.0.0.1:8080"), ("relay:connectPlain:0", "127.0.0.1:8080"), key)));
        Assert.Contains("relay.admin: [::1]:9090 is relay.connect's too",
            Assert.Single(ErrorsOf(("relay:connect:0", "[::1]:9090"), ("relay:admin", "[::1]:9090"), key)));

        // Port 0 is a port of its own for each; another address or port is another listener.
        Assert.Empty(ErrorsOf(("relay:connect:0", "127.0.0.1:0"), ("relay:connectPlain:0", "127.0.0.1:0"), ("relay:admin", "127.0.0.1:0"), key));
        Assert.Empty(ErrorsOf(("relay:connect:0", "127.0.0.1:8443"), ("relay:connectPlain:0", "127.0.0.2:8443"), ("relay:admin", "127.0.0.1:9090"), key));
    }

    [Fact]
    public void A_tunnel_end_s_admin_listener_on_its_own_listener_s_address_is_refused()
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        using var peer = Passage.Identity.NodeIdentity.Create();
        void Read(SettingsReader reader) => TunnelSettings.Read(reader, quicSupported: false);
        (string, string)[] server =
        [
            ("general:mode", "server"), ("general:peer", peer.NodeId.ToString()), ("tls:key", directory.File("server.pem")),
            ("general:bindAddress", "127.0.0.1:20443"), ("general:httpConnectAddress", "127.0.0.1:8080"),
        ];
        (string, string)[] client =
        [
            ("general:mode", "client"), ("general:peer", peer.NodeId.ToString()), ("tls:key", directory.File("client.pem")),
            ("general:connectAddress", "127.0.0.1:20443"), ("general:httpBindAddress", "127.0.0.1:20080"),
        ];

        Assert.StartsWith("general.adminBindAddress: 127.0.0.1:20443 is general.bindAddress's too: ",
            Assert.Single(ErrorsOf(Read, [.. server, ("general:adminBindAddress", "127.0.0.1:20443")])));
        Assert.StartsWith("general.adminBindAddress: 127.0.0.1:20080 is general.httpBindAddress's too: ",
            Assert.Single(ErrorsOf(Read, [.. client, ("general:adminBindAddress", "127.0.0.1:20080")])));
        // The listener an end does not open is no conflict: a server takes no local HTTP requests.
        Assert.Empty(ErrorsOf(Read, [.. server, ("general:adminBindAddress", "127.0.0.1:20080")]));
    }

    [Fact]
    public void A_wildcard_listener_beside_one_on_an_address_it_stands_for_on_the_same_port_is_refused()
    {
        // Only the same address and port was refused: 0.0.0.0:8080 beside 127.0.0.1:8080 passed config check and the second
        // failed to listen at start (address in use).
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var key = ("relay:key", directory.File("relay.pem"));
        Assert.Equal(
            "relay.connectPlain: 127.0.0.1:8080 and relay.connect's 0.0.0.0:8080 take one port on one address (0.0.0.0 stands for every IPv4 address): the second could not listen (from relay.json)",
            Assert.Single(ErrorsOf(("relay:connect:0", "0.0.0.0:8080"), ("relay:connectPlain:0", "127.0.0.1:8080"), key)));
        Assert.Contains("relay.admin: 127.0.0.1:9090 and relay.connect's [::]:9090 take one port on one address ([::] stands for every address, IPv4 ones too)",
            Assert.Single(ErrorsOf(("relay:connect:0", "[::]:9090"), ("relay:admin", "127.0.0.1:9090"), key)));
        Assert.Contains("relay.admin: [::]:9090 and relay.connect's 0.0.0.0:9090 take one port on one address ([::] stands for",
            Assert.Single(ErrorsOf(("relay:connect:0", "0.0.0.0:9090"), ("relay:admin", "[::]:9090"), key)));
        Assert.Contains("relay.admin: [::1]:9090 and relay.connect's [::]:9090",
            Assert.Single(ErrorsOf(("relay:connect:0", "[::]:9090"), ("relay:admin", "[::1]:9090"), key)));

        // The IPv4 wildcard does not stand for IPv6 addresses, nor one port for another.
        Assert.Empty(ErrorsOf(("relay:connect:0", "0.0.0.0:9090"), ("relay:admin", "[::1]:9090"), key));
        Assert.Empty(ErrorsOf(("relay:connect:0", "0.0.0.0:9090"), ("relay:admin", "127.0.0.1:9091"), key));
    }

    [Fact]
    public void What_the_check_refuses_the_system_refuses_too()
    {
        // The rule above, against real listeners set up as the relay's are (SO_REUSEADDR; [::] for both families).
        foreach (var (first, second, overlap) in new[]
        {
            ("0.0.0.0", "127.0.0.1", true), ("[::]", "127.0.0.1", true), ("[::]", "::1", true), ("[::]", "0.0.0.0", true),
            ("0.0.0.0", "::1", false),
        })
        {
            using var a = Listen(System.Net.IPAddress.Parse(first.Trim('[', ']')), 0);
            var port = ((System.Net.IPEndPoint)a.LocalEndPoint!).Port;
            var secondEndpoint = new System.Net.IPEndPoint(System.Net.IPAddress.Parse(second.Trim('[', ']')), port);
            Assert.Equal(overlap, SettingsReader.Overlap((System.Net.IPEndPoint)a.LocalEndPoint!, secondEndpoint));
            Exception? failed = null;
            try
            {
                using var b = Listen(secondEndpoint.Address, port);
            }
            catch (System.Net.Sockets.SocketException e) when (e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse)
            {
                failed = e;
            }
            Assert.True(overlap == (failed is not null), $"{first} then {second}: the system {(failed is null ? "took both" : "refused the second")}");
        }

        static System.Net.Sockets.Socket Listen(System.Net.IPAddress address, int port)
        {
            var socket = new System.Net.Sockets.Socket(address.AddressFamily, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            try
            {
                if (address.Equals(System.Net.IPAddress.IPv6Any))
                {
                    socket.DualMode = true;
                }
                socket.SetRawSocketOption(1, 2, BitConverter.GetBytes(1)); // SOL_SOCKET, SO_REUSEADDR
                socket.Bind(new System.Net.IPEndPoint(address, port));
                socket.Listen();
                return socket;
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        }
    }
}
