using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;
using Passage.Tests.Privacy;
using Passage.Tests.Relay.Passthrough;

namespace Passage.Tests.Relay;

/// <summary>
/// The relay's destination guard (README, "No open relay") across real interfaces: the <c>passage relay</c> process runs
/// in a network namespace of its own, the relay's host, linked to a second one, another host, by a veth pair that
/// carries a public network (1.2.3.0/24) and a private one (192.168.213.0/24); each host holds the first (relay) or
/// second (other) address of each, and a destination listening on every address of its own. Nothing leaves the machine.
/// On loopback every address is 127.0.0.1, so only here can a test tell an address of the relay's own host from the same
/// kind of address on another host. Requests come from the test's namespace, over the relay host's pair with it, by curl
/// (CONNECT) or a raw ClientHello (pass-through).
/// </summary>
public sealed class DestinationGuardNamespaceTests
{
    private static readonly IPNetwork Public = IPNetwork.Parse("1.2.3.0/24");
    private static readonly IPNetwork Private = IPNetwork.Parse("192.168.213.0/24");
    private static readonly IPAddress OwnPublic = NetworkNamespace.Nth(Public, 1);
    private static readonly IPAddress OtherPublic = NetworkNamespace.Nth(Public, 2);
    private static readonly IPAddress OwnPrivate = NetworkNamespace.Nth(Private, 1);
    private static readonly IPAddress OtherPrivate = NetworkNamespace.Nth(Private, 2);

    private const string OwnHost = "passage; error=destination_ip_prohibited; details=\"resolves to an address of the relay's own host\"";
    private const string PrivateAddress = "passage; error=destination_ip_prohibited; details=\"resolves to a private address\"";

    [NetworkNamespaceFact]
    public async Task A_public_address_of_the_relays_own_host_is_refused_and_the_same_kind_on_another_host_is_reached()
    {
        await using var hosts = TwoHosts.Create();
        await using var relay = await ConnectRelay.StartAsync(hosts);

        AssertRefused(await relay.ThroughAsync(OwnPublic, hosts.OwnOrigin.Port), OwnHost);
        AssertReached(await relay.ThroughAsync(OtherPublic, hosts.OtherOrigin.Port), from: OwnPublic);
        // The refusal came before any dial: the relay host's own destination never saw a connection.
        Assert.Empty(hosts.OwnOrigin.Ended);
    }

    /// <summary>
    /// An address the relay's host takes while it runs is its own to the first dial two seconds later (README: no dial is
    /// judged by a reading two seconds old), and the other host's again once it lets it go. The address is the other host's all along: a relay that misses the change dials
    /// it, and finds nothing there while it is its own host's, or keeps refusing it once it is the other's again.
    /// </summary>
    [NetworkNamespaceFact]
    public async Task An_address_the_relays_host_takes_while_it_runs_is_refused_and_once_let_go_is_reached_again()
    {
        var moving = NetworkNamespace.Nth(Public, 3);
        await using var hosts = TwoHosts.Create();
        hosts.Other.AddAddress(moving);
        await using var relay = await ConnectRelay.StartAsync(hosts);
        var port = hosts.OtherOrigin.Port;
        AssertReached(await relay.ThroughAsync(moving, port), from: OwnPublic);

        // No check uses a reading of the host's addresses two seconds old: past them, the very first dial knows of the
        // address taken, whatever reading it finds (one from before the change is too old; a later one holds it).
        hosts.Relay.AddAddress(moving);
        await Task.Delay(ReadingUsableFor);
        AssertRefused(await relay.ThroughAsync(moving, port), OwnHost);

        hosts.Relay.RemoveAddress(moving);
        await Task.Delay(ReadingUsableFor);
        AssertReached(await relay.ThroughAsync(moving, port), from: OwnPublic);
    }

    /// <summary>A little more than the age past which a reading of the host's addresses is not used (HostAddresses).</summary>
    private static readonly TimeSpan ReadingUsableFor = TimeSpan.FromSeconds(2.2);

    [NetworkNamespaceFact]
    public async Task Without_allow_private_a_private_address_is_refused_on_another_host_and_on_the_relays_own()
    {
        await using var hosts = TwoHosts.Create();
        await using var relay = await ConnectRelay.StartAsync(hosts);

        AssertRefused(await relay.ThroughAsync(OtherPrivate, hosts.OtherOrigin.Port), PrivateAddress);
        AssertRefused(await relay.ThroughAsync(OwnPrivate, hosts.OwnOrigin.Port), OwnHost);
    }

    /// <summary>
    /// <c>--allow-private</c> opens private addresses, and loopback with them, this host's own addresses among it (README:
    /// "loopback (this host's own addresses too ...), private ..., CGNAT (--allow-private allows these)"): the other host's
    /// private address is reached, and so is the relay host's own.
    /// </summary>
    [NetworkNamespaceFact]
    public async Task With_allow_private_a_private_address_of_another_host_is_reached_and_the_relays_own_as_loopback_is()
    {
        await using var hosts = TwoHosts.Create();
        await using var relay = await ConnectRelay.StartAsync(hosts, "--allow-private");

        AssertReached(await relay.ThroughAsync(OtherPrivate, hosts.OtherOrigin.Port), from: OwnPrivate);
        AssertReached(await relay.ThroughAsync(OwnPrivate, hosts.OwnOrigin.Port), from: OwnPrivate);
    }

    /// <summary>
    /// <c>--allow-network</c> opens an address of the relay's own host only with a network of it alone: the relay's LAN
    /// (here the private link's /24) opens the other host's address in it, not the relay host's own; a /32 of an own
    /// address opens that one.
    /// </summary>
    [NetworkNamespaceFact]
    public async Task Allow_network_opens_an_own_address_only_by_a_network_of_it_alone()
    {
        await using var hosts = TwoHosts.Create();
        await using var relay = await ConnectRelay.StartAsync(hosts, "--allow-network", Private.ToString(), "--allow-network", $"{OwnPublic}/32");

        AssertReached(await relay.ThroughAsync(OtherPrivate, hosts.OtherOrigin.Port), from: OwnPrivate);
        AssertRefused(await relay.ThroughAsync(OwnPrivate, hosts.OwnOrigin.Port), OwnHost);
        AssertReached(await relay.ThroughAsync(OwnPublic, hosts.OwnOrigin.Port), from: OwnPublic);
    }

    /// <summary>
    /// The pass-through relay judges its upstreams by the same guard: a route to a public address of its own host gets
    /// <c>unrecognized_name</c> and nothing is dialed, where a route to the same kind of address on another host is
    /// followed, the client's hello reaching it.
    /// </summary>
    [NetworkNamespaceFact]
    public async Task The_passthrough_relay_refuses_a_route_to_its_own_hosts_public_address_and_follows_one_to_another_host()
    {
        await using var hosts = TwoHosts.Create();
        await using var relay = hosts.Relay.Run(() => PassageProcess.Start([
            "relay", "--passthrough", $"{hosts.Relay.Address}:0",
            "--route", $"own.test={OwnPublic}:{hosts.OwnOrigin.Port}", "--route", $"other.test={OtherPublic}:{hosts.OtherOrigin.Port}",
        ]));
        var door = new IPEndPoint(hosts.Relay.Address, await relay.WaitForListeningPortAsync(hosts.Relay.Address.ToString()));

        Assert.Equal(Alert(TlsAlertDescription.UnrecognizedName), await HelloAsync(door, "own.test"));
        Assert.Empty(await HelloAsync(door, "other.test"));

        var reached = Assert.Single(await hosts.OtherOrigin.WaitForEndedAsync(1));
        Assert.Equal(SyntheticHello.WithServerName("other.test"), reached.Received);
        Assert.Equal(OwnPublic, reached.Peer.Address);
        Assert.Empty(hosts.OwnOrigin.Ended);
    }

    /// <summary>
    /// A route back to the pass-through relay's own listener at a non-loopback address of its host, on that listener's
    /// port, is surely the relay: refused with <c>unrecognized_name</c> before a byte goes out, even where
    /// <c>--allow-network</c> opens the address (README: "a listener's own address, on its port is surely the relay and
    /// refused before a byte goes out"). The one hop back in gets no byte and sees its client leave: one hop, not a loop.
    /// </summary>
    [NetworkNamespaceFact]
    public Task The_passthrough_relay_refuses_a_route_back_to_its_own_listeners_non_loopback_address_before_a_byte_goes_out() =>
        AssertRouteBackRefusedAsync(everyAddress: false);

    /// <summary>
    /// The same route back, to a listener bound to every address: something else of the host's kernel might answer at its
    /// own address on that port, so the dial goes ahead, and the hop back in, from that very dial, is refused; its alert
    /// reaches the client through the first hop (README). Still one hop, not a loop.
    /// </summary>
    [NetworkNamespaceFact]
    public Task The_passthrough_relay_refuses_the_hop_back_in_from_a_route_to_its_own_address_on_a_listener_of_every_address() =>
        AssertRouteBackRefusedAsync(everyAddress: true);

    /// <summary>
    /// A pass-through relay in the relay's host, listening on port 443 (any port is free in a namespace of the test's
    /// own) of <see cref="OwnPublic"/> (or, with <paramref name="everyAddress"/>, of every address), routes back.test to
    /// that port of <see cref="OwnPublic"/>, which <c>--allow-network</c> opens: a client's hello for back.test gets
    /// <c>unrecognized_name</c>, and the relay accepted two connections, the client's and one hop back in.
    /// </summary>
    private static async Task AssertRouteBackRefusedAsync(bool everyAddress)
    {
        const int Port = 443;
        await using var hosts = TwoHosts.Create();
        string[] doors = everyAddress
            ? ["--passthrough", $"0.0.0.0:{Port}"]
            : ["--passthrough", $"{hosts.Relay.Address}:{Port}", "--passthrough", $"{OwnPublic}:{Port}"];
        await using var relay = hosts.Relay.Run(() => PassageProcess.Start([
            "relay", .. doors, "--route", $"back.test={OwnPublic}:{Port}", "--allow-network", $"{OwnPublic}/32", "--admin", "127.0.0.1:0",
        ]));
        var admin = $"http://127.0.0.1:{await relay.WaitForAdminPortAsync()}/metrics";
        foreach (var door in everyAddress ? ["0.0.0.0"] : new[] { hosts.Relay.Address.ToString(), OwnPublic.ToString() })
        {
            await relay.WaitForListeningPortAsync(door);
        }

        Assert.Equal(Alert(TlsAlertDescription.UnrecognizedName), await HelloAsync(new IPEndPoint(hosts.Relay.Address, Port), "back.test"));

        // Surely the relay: the first hop is refused, and the hop back in, which got no byte, sees it leave. Maybe the
        // relay: the hop back in is refused, and the first hop ends with it.
        const string Refused = "passage_relay_connections_refused_total{front_door=\"passthrough\",reason=";
        var metrics = (await EventuallyAsync(
            () => hosts.Relay.CurlAsync(admin),
            m => AdminScraper.Value(m.StandardOutput, Refused + "\"destination_ip_prohibited\"}") == 1
                && (everyAddress || AdminScraper.Value(m.StandardOutput, Refused + "\"client_closed\"}") == 1))).StandardOutput;
        Assert.Equal(2, AdminScraper.Value(metrics, "passage_relay_connections_accepted_total{front_door=\"passthrough\"}"));
    }

    /// <summary>
    /// Runs <paramref name="ask"/> (curl) again until its result satisfies <paramref name="done"/>, for
    /// <see cref="Timeouts.Default"/> at most: a change the relay learns of in its own time is seen eventually, not at once.
    /// </summary>
    private static async Task<(int ExitCode, string StandardOutput, string StandardError)> EventuallyAsync(
        Func<Task<(int ExitCode, string StandardOutput, string StandardError)>> ask,
        Func<(int ExitCode, string StandardOutput, string StandardError), bool> done)
    {
        using var deadline = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            var result = await ask();
            if (done(result))
            {
                return result;
            }
            if (deadline.IsCancellationRequested)
            {
                throw new TimeoutException(
                    $"still not so after {Timeouts.Default.TotalSeconds} s; the last answer:\n{result.StandardOutput}\n{result.StandardError}");
            }
            await Task.Delay(100);
        }
    }

    private static byte[] Alert(TlsAlertDescription description) => TlsAlert.Fatal(description).ToArray();

    /// <summary>Sends a ClientHello for <paramref name="serverName"/> to <paramref name="door"/>, ends its side, and returns all that came back.</summary>
    private static async Task<byte[]> HelloAsync(IPEndPoint door, string serverName)
    {
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(door).WaitAsync(Timeouts.Default);
        await Loopback.SendAllAsync(client, SyntheticHello.WithServerName(serverName));
        client.Shutdown(SocketShutdown.Send);
        return await Loopback.ReadToEndAsync(client);
    }

    /// <summary>curl reached a destination, which saw the relay come from <paramref name="from"/>.</summary>
    private static void AssertReached((int ExitCode, string StandardOutput, string StandardError) result, IPAddress from)
    {
        Assert.True(result.ExitCode == 0, result.StandardError);
        Assert.Equal($"seen from {from}\n", result.StandardOutput);
    }

    /// <summary>curl was refused its tunnel with 403 and <paramref name="proxyStatus"/>.</summary>
    private static void AssertRefused((int ExitCode, string StandardOutput, string StandardError) result, string proxyStatus)
    {
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("< HTTP/1.1 403 Forbidden", result.StandardError);
        Assert.Contains($"< Proxy-Status: {proxyStatus}", result.StandardError);
    }

    /// <summary>
    /// The relay's host and another, each a namespace, linked by a pair carrying <see cref="Public"/> and
    /// <see cref="Private"/>, each with a destination on every address of its own.
    /// </summary>
    private sealed class TwoHosts : IAsyncDisposable
    {
        private RecordingOrigin? _ownOrigin;
        private RecordingOrigin? _otherOrigin;

        private TwoHosts(NetworkNamespace relay, NetworkNamespace other)
        {
            Relay = relay;
            Other = other;
        }

        /// <summary>Where the relay runs: the first address of each network is its own.</summary>
        public NetworkNamespace Relay { get; }

        /// <summary>Another host on the link: the second address of each network.</summary>
        public NetworkNamespace Other { get; }

        /// <summary>A destination on every address of the relay's host: what a dial to one of its own addresses reaches.</summary>
        public RecordingOrigin OwnOrigin => _ownOrigin!;

        /// <summary>A destination on every address of the other host.</summary>
        public RecordingOrigin OtherOrigin => _otherOrigin!;

        public static TwoHosts Create()
        {
            var relay = NetworkNamespace.Create();
            TwoHosts hosts;
            try
            {
                hosts = new TwoHosts(relay, NetworkNamespace.Create());
            }
            catch
            {
                relay.Dispose();
                throw;
            }
            try
            {
                relay.LinkTo(hosts.Other, Public, Private);
                hosts._ownOrigin = relay.Run(() => new RecordingOrigin(IPAddress.Any));
                hosts._otherOrigin = hosts.Other.Run(() => new RecordingOrigin(IPAddress.Any));
                return hosts;
            }
            catch
            {
                hosts.DisposeAsync().AsTask().GetAwaiter().GetResult();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            try
            {
                foreach (var origin in new[] { _ownOrigin, _otherOrigin })
                {
                    if (origin is not null)
                    {
                        await origin.DisposeAsync();
                    }
                }
            }
            finally
            {
                try
                {
                    Other.Dispose();
                }
                finally
                {
                    Relay.Dispose();
                }
            }
        }
    }

    /// <summary>A CONNECT relay (plain) in the relay's host, listening on its end of the pair with the test's namespace.</summary>
    private sealed class ConnectRelay(TemporaryDirectory directory, PassageProcess process, string proxy) : IAsyncDisposable
    {
        /// <summary>Starts <c>passage relay</c> taking any host and port, as <paramref name="extra"/> allows its addresses.</summary>
        public static async Task<ConnectRelay> StartAsync(TwoHosts hosts, params string[] extra)
        {
            var directory = new TemporaryDirectory();
            var address = hosts.Relay.Address;
            var process = hosts.Relay.Run(() => PassageProcess.Start([
                "relay", "--connect-plain", $"{address}:0", "--insecure-plain", "--allow", "*:*",
                "--key", directory.File("relay.pem"), .. extra,
            ]));
            try
            {
                var port = await process.WaitForPortAfterAsync($"connect-plain listening on {address}:");
                return new ConnectRelay(directory, process, $"http://{address}:{port}");
            }
            catch
            {
                await process.DisposeAsync();
                directory.Dispose();
                throw;
            }
        }

        /// <summary>curl's GET of <paramref name="address"/>:<paramref name="port"/> through a CONNECT tunnel of the relay, verbose (its answer's head on standard error).</summary>
        public async Task<(int ExitCode, string StandardOutput, string StandardError)> ThroughAsync(IPAddress address, int port)
        {
            var result = await Curl.RunAsync("-v", "-p", "-x", proxy, $"http://{address}:{port}/");
            return (result.ExitCode, result.StandardOutput, result.StandardError + process.Output);
        }

        public async ValueTask DisposeAsync()
        {
            await process.DisposeAsync();
            directory.Dispose();
        }
    }
}
