using System.Net;
using System.Net.Sockets;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary><c>passage client --admin</c>: its counters on /metrics and its relays' health on /healthz, as a real process.</summary>
public sealed class ClientAdminTests
{
    /// <summary>A client with SOCKS5, the HTTP proxy and the admin listener, each on a port from the OS.</summary>
    private sealed class AdminClient : IAsyncDisposable
    {
        private AdminClient(PassageProcess process, int socks, int http, AdminScraper admin) => (Process, Socks, Http, Admin) = (process, socks, http, admin);

        public PassageProcess Process { get; }

        public int Socks { get; }

        public int Http { get; }

        public AdminScraper Admin { get; }

        public static async Task<AdminClient> StartAsync(string relay, IDictionary<string, string?>? environment = null)
        {
            var process = PassageProcess.Start(["client", "--relay", relay, "--socks", "127.0.0.1:0", "--http", "127.0.0.1:0", "--admin", "127.0.0.1:0"], environment);
            var socks = await process.WaitForPortAfterAsync("socks listening on 127.0.0.1:");
            var http = await process.WaitForPortAfterAsync("http-proxy listening on 127.0.0.1:");
            return new AdminClient(process, socks, http, await AdminScraper.ForAsync(process));
        }

        public async ValueTask DisposeAsync()
        {
            Admin.Dispose();
            await Process.DisposeAsync();
        }
    }

    private static long? Value(string metrics, string series) => AdminScraper.Value(metrics, series);

    /// <summary>
    /// The SOCKS5 port counts the connections it refuses, as the HTTP proxy does, by the reason the HTTP proxy would give:
    /// another protocol, a method it may not use, a command it does not serve, no request in time. Before, none was
    /// counted.
    /// </summary>
    [Fact]
    public async Task Socks5_refusals_are_counted_by_reason()
    {
        await using var relay = await RelayProcess.StartAsync();
        await using var client = await AdminClient.StartAsync(
            relay.Address.ToString(), new Dictionary<string, string?> { ["PASSAGE__CLIENT__HANDSHAKETIMEOUT"] = "300ms" });

        // SOCKS4; an offer of username/password alone, where none is configured; BIND; a greeting and then nothing.
        byte[][] attempts = [[4, 1, 0, 80, 127, 0, 0, 1, 0], [5, 1, 2], [5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80], [5, 1, 0]];
        foreach (var attempt in attempts)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await socket.ConnectAsync(IPAddress.Loopback, client.Socks);
            await socket.SendAsync(attempt);
            Assert.True(await Loopback.IsClosedByPeerAsync(socket));
        }

        var metrics = await client.Admin.MetricsWhenAsync(m => Value(m, "passage_client_connections_refused_total{front_door=\"socks\",reason=\"http_request_timeout\"}") == 1);
        Assert.Equal(1, Value(metrics, "passage_client_connections_refused_total{front_door=\"socks\",reason=\"http_request_error\"}"));
        Assert.Equal(1, Value(metrics, "passage_client_connections_refused_total{front_door=\"socks\",reason=\"authentication_required\"}"));
        Assert.Equal(1, Value(metrics, "passage_client_connections_refused_total{front_door=\"socks\",reason=\"method_not_allowed\"}"));
        Assert.Equal(4, Value(metrics, "passage_client_connections_accepted_total{front_door=\"socks\"}"));
    }

    /// <summary>
    /// Each local connection is counted closed, by its front door, once it ends: refused or left before its request alike,
    /// and not while it is open. Before, a client counted none (accepted less open was all an operator had).
    /// </summary>
    [Fact]
    public async Task Closed_connections_are_counted_by_front_door()
    {
        await using var relay = await RelayProcess.StartAsync();
        await using var client = await AdminClient.StartAsync(relay.Address.ToString());

        // SOCKS4 at the SOCKS5 port, and a line that is not HTTP at the HTTP proxy: both refused.
        foreach (var (port, attempt) in new[] { (client.Socks, new byte[] { 4, 1, 0, 80, 127, 0, 0, 1, 0 }), (client.Http, "\u0001\r\n"u8.ToArray()) })
        {
            using var refused = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await refused.ConnectAsync(IPAddress.Loopback, port);
            await refused.SendAsync(attempt);
            Assert.True(await Loopback.IsClosedByPeerAsync(refused));
        }
        await client.Admin.MetricsWhenAsync(m =>
            Value(m, "passage_client_connections_closed_total{front_door=\"socks\"}") == 1 && Value(m, "passage_client_connections_closed_total{front_door=\"http-proxy\"}") == 1);

        // One open is not counted closed while it lasts, and is once it leaves before its request.
        using var held = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await held.ConnectAsync(IPAddress.Loopback, client.Http);
        var open = await client.Admin.MetricsWhenAsync(m => Value(m, "passage_client_connections_accepted_total{front_door=\"http-proxy\"}") == 2 && Value(m, "passage_client_connections_open") == 1);
        Assert.Equal(1, Value(open, "passage_client_connections_closed_total{front_door=\"http-proxy\"}"));
        held.Close();
        var closed = await client.Admin.MetricsWhenAsync(m =>
            Value(m, "passage_client_connections_closed_total{front_door=\"http-proxy\"}") == 2 && Value(m, "passage_client_connections_open") == 0);
        Assert.Equal(1, Value(closed, "passage_client_connections_closed_total{front_door=\"socks\"}"));
        Assert.Contains("# TYPE passage_client_connections_closed_total counter", closed);
        Assert.DoesNotContain("127.0.0.1", closed);
    }

    [Fact]
    public async Task Metrics_count_the_clients_tunnels_and_connections_under_its_own_names_and_name_no_address()
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = await RelayProcess.StartAsync();
        await using var client = await AdminClient.StartAsync(relay.Address.ToString());

        var before = await client.Admin.MetricsAsync();
        Assert.Equal(0, Value(before, "passage_client_tunnels_opened_total"));
        Assert.Equal(1, Value(before, "passage_client_relays{state=\"up\"}"));
        Assert.Equal(0, Value(before, "passage_client_relays{state=\"down\"}"));
        Assert.Equal(0, Value(before, "passage_client_relays{state=\"refusing\"}"));

        var viaSocks = await Curl.RunAsync("--socks5-hostname", $"127.0.0.1:{client.Socks}", "--cacert", origin.CertificatePath, $"https://origin.test:{origin.Port}/");
        Assert.True(viaSocks.ExitCode == 0, viaSocks.StandardError + client.Process.Output);
        var viaHttp = await Curl.RunAsync("-x", $"http://127.0.0.1:{client.Http}", "--cacert", origin.CertificatePath, $"https://origin.test:{origin.Port}/");
        Assert.True(viaHttp.ExitCode == 0, viaHttp.StandardError + client.Process.Output);
        // A destination that refuses: the relay says so, and no other relay is asked.
        var refused = await Curl.RunAsync("--socks5-hostname", $"127.0.0.1:{client.Socks}", $"http://origin.test:{Loopback.ClosedPort()}/");
        Assert.NotEqual(0, refused.ExitCode);

        // Bytes are counted once each write has completed, which may come just after curl has read them: look until they are.
        var after = await client.Admin.MetricsWhenAsync(m => Value(m, "passage_client_bytes_total{direction=\"upstream_to_client\"}") > 0);
        Assert.Equal(2, Value(after, "passage_client_tunnels_opened_total"));
        Assert.Equal(1, Value(after, "passage_client_tunnels_failed_total{failure=\"connection_refused\"}"));
        Assert.Equal(2, Value(after, "passage_client_connections_accepted_total{front_door=\"socks\"}"));
        Assert.Equal(1, Value(after, "passage_client_connections_accepted_total{front_door=\"http-proxy\"}"));
        Assert.True(Value(after, "passage_client_bytes_total{direction=\"client_to_upstream\"}") > 0, after);
        Assert.Contains("# TYPE passage_client_relays gauge", after);
        Assert.Contains("process_open_fds ", after);
        // A client's own names only: no relay instrument that would stay 0 for ever.
        Assert.DoesNotContain("passage_relay_", after);
        // Aggregate only: no application address, destination or relay in the exposition.
        Assert.DoesNotContain("127.0.0.1", after);
        Assert.DoesNotContain("origin.test", after);
        Assert.DoesNotContain(relay.NodeId.ToString(), after);
    }

    [Fact]
    public async Task Healthz_answers_while_a_relay_is_usable_and_503_once_none_is()
    {
        await using var relay = await RelayProcess.StartAsync();
        await using var client = await AdminClient.StartAsync(relay.Address.ToString());
        Assert.Equal((HttpStatusCode.OK, "ok\n"), await client.Admin.HealthAsync());

        await relay.Process.KillAsync();
        // The client learns it at its next probe.
        Assert.Equal("no usable relay (1 down, 0 refusing this client's credentials)\n", await client.Admin.HealthWhenAsync(HttpStatusCode.ServiceUnavailable));
        var metrics = await client.Admin.MetricsAsync();
        Assert.Equal(0, Value(metrics, "passage_client_relays{state=\"up\"}"));
        Assert.Equal(1, Value(metrics, "passage_client_relays{state=\"down\"}"));
    }

    /// <summary>While the front doors drain after the first SIGTERM, /healthz says the client is stopping.</summary>
    [Fact]
    public async Task Healthz_says_stopping_while_the_front_doors_drain()
    {
        using var origin = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        origin.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        origin.Listen(1);
        await using var relay = await RelayProcess.StartAsync();
        await using var client = await AdminClient.StartAsync(relay.Address.ToString());

        // A tunnel held open keeps the drain going until its timeout.
        using var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await app.ConnectAsync(new IPEndPoint(IPAddress.Loopback, client.Http));
        await Loopback.SendAllAsync(app, System.Text.Encoding.ASCII.GetBytes($"CONNECT origin.test:{((IPEndPoint)origin.LocalEndPoint!).Port} HTTP/1.1\r\nHost: origin.test\r\n\r\n"));
        using var accepted = await origin.AcceptAsync().WaitAsync(Timeouts.Default);

        client.Process.Signal();
        // The HTTP proxy's connection has the drain timeout (5 s) to finish, and holds it: the admin listener answers meanwhile.
        await client.Process.WaitForLineAsync(l => l.Contains("accepting no new connections; 1 open", StringComparison.Ordinal));
        var health = await client.Admin.HealthAsync();
        Assert.Equal((HttpStatusCode.ServiceUnavailable, "stopping\n"), health);
    }

    [Fact]
    public async Task An_admin_port_in_use_or_an_address_not_here_is_one_line_naming_it()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        await using var relay = await RelayProcess.StartAsync();

        var (inUse, _, inUseError) = await PassageProcess.RunAsync(["client", "--relay", relay.Address.ToString(), "--socks", "127.0.0.1:0", "--http", "off", "--admin", $"127.0.0.1:{port}"]);
        Assert.Equal(1, inUse);
        Assert.Contains("Cannot start", inUseError);
        Assert.Contains($"127.0.0.1:{port}", inUseError);
        Assert.DoesNotContain("   at ", inUseError);

        // 192.0.2.0/24 is for documentation (RFC 5737): bind(2) fails with EADDRNOTAVAIL.
        var (elsewhere, _, elsewhereError) = await PassageProcess.RunAsync(["client", "--relay", relay.Address.ToString(), "--socks", "127.0.0.1:0", "--http", "off", "--admin", "192.0.2.7:9090"]);
        Assert.Equal(1, elsewhere);
        Assert.Contains("Cannot start: admin cannot listen on 192.0.2.7:9090: ", elsewhereError);
        Assert.DoesNotContain("   at ", elsewhereError);
    }

    [Fact]
    public async Task A_bad_admin_endpoint_is_an_error_naming_client_admin_in_config_check()
    {
        using var directory = new TemporaryDirectory();
        using var identity = NodeIdentity.Create();
        var relay = new PeerAddress(identity.NodeId, "127.0.0.1", 1);
        var bad = directory.Write("bad.json", $$"""{ "client": { "relays": ["{{relay}}"], "admin": "localhost:notaport" } }""");
        var (exit, _, errors) = await PassageProcess.RunAsync(["config", "check", bad]);
        Assert.Equal(1, exit);
        Assert.Contains("client.admin: 'localhost:notaport'", errors);

        var good = directory.Write("good.json", $$"""{ "client": { "relays": ["{{relay}}"], "admin": "127.0.0.1:9101" } }""");
        var (goodExit, output, goodErrors) = await PassageProcess.RunAsync(["config", "check", good]);
        Assert.True(goodExit == 0, goodErrors);
        Assert.Contains("\"admin\": \"127.0.0.1:9101\"", output);
    }
}
