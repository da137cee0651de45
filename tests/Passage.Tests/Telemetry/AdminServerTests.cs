using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Relay;
using Passage.Relay.Passthrough;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Transport;

namespace Passage.Tests.Telemetry;

/// <summary>The admin listener of a relay: /metrics in Prometheus text, /healthz.</summary>
public sealed class AdminServerTests
{
    [Fact]
    public async Task Metrics_show_aggregate_counters_and_healthz_answers_until_stopping()
    {
        await using var host = await StartRelayWithAdminAsync();
        using var http = new HttpClient { BaseAddress = new Uri($"http://{host.AdminEndpoint}"), Timeout = Timeouts.Default };

        // One refused connection (not TLS), so there is something to count.
        using (var client = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await client.ConnectAsync(host.Passthrough!.LocalEndpoints[0]);
            await Loopback.SendAllAsync(client, "GET / HTTP/1.1\r\n\r\n"u8.ToArray());
            await Loopback.ReadToEndAsync(client);
        }

        Assert.Equal("ok\n", await http.GetStringAsync("/healthz"));
        using var response = await http.GetAsync("/metrics");
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.ToString());
        var text = await response.Content.ReadAsStringAsync();
        Assert.Contains("# TYPE passage_relay_connections_accepted_total counter", text);
        Assert.Contains("passage_relay_connections_accepted_total{front_door=\"passthrough\"} 1", text);
        Assert.Contains("passage_relay_connections_refused_total{front_door=\"passthrough\",reason=\"not_tls\"} 1", text);
        Assert.Contains("# TYPE passage_relay_connections_open gauge", text);
        Assert.Contains("# TYPE passage_relay_bytes_total counter", text);
        // Aggregate only: no address of any kind in the exposition.
        Assert.DoesNotContain("127.0.0.1", text);

        foreach (var path in new[] { "/healthz", "/metrics" })
        {
            using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, path));
            Assert.Equal(HttpStatusCode.OK, head.StatusCode);
            Assert.Empty(await head.Content.ReadAsByteArrayAsync());
        }

        await host.StopAsync();
        using var stopping = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stopping.StatusCode);
        using var stoppingHead = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/healthz"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stoppingHead.StatusCode);
    }

    /// <summary>
    /// Whoever reaches the admin port could otherwise hold connections until the relay runs out of descriptors (and
    /// the process aborts): beyond <see cref="AdminServer.MaxConnections"/> one more is closed at once.
    /// </summary>
    /// <summary>The admin endpoint has no authentication: bound beyond loopback, the operator is told so at start.</summary>
    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("::1", false)]
    [InlineData("0.0.0.0", true)]
    [InlineData("::", true)]
    public async Task An_admin_endpoint_beyond_loopback_is_warned_of_at_start(string address, bool warned)
    {
        using var metrics = new RelayMetrics();
        var log = new RecordingLogger();
        using var factory = new LoggerFactory([log]);
        await using var admin = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Parse(address), 0), metrics.Meter, () => null, factory);
        var warnings = log.Named("AdminBeyondLoopback");
        Assert.Equal(warned ? 1 : 0, warnings.Count);
        Assert.All(warnings, w => Assert.Equal(LogLevel.Warning, w.Level));
        Assert.Single(log.Named("AdminListening"));
    }

    [Fact]
    public async Task Connections_beyond_the_admin_limit_are_closed_at_once_and_room_comes_back()
    {
        // Silent connections are kept for the idle timeout, here longer than the test waits: only those beyond the
        // limit close now.
        using var metrics = new RelayMetrics();
        await using var admin = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), metrics.Meter, () => null, NullLoggerFactory.Instance, Timeouts.Default * 2);
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < AdminServer.MaxConnections + 8; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                held.Add(socket);
                await socket.ConnectAsync(admin.LocalEndpoint).WaitAsync(Timeouts.Default);
            }
            // Which ones is Kestrel's order of dispatch, not quite the order of connecting: only the count is checked.
            var closed = await Task.WhenAll(held.Select(s => Loopback.IsClosedByPeerAsync(s, TimeSpan.FromSeconds(2))));
            Assert.Equal(8, closed.Count(c => c));
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }

        // A slot is freed once Kestrel has seen its connection close.
        await HealthzAnswersAsync(admin.LocalEndpoint);
    }

    /// <summary>A port in use was said in Kestrel's words, "Failed to bind to address http://...", which name no listener of the relay's.</summary>
    [Fact]
    public async Task A_port_in_use_is_said_to_be_the_admin_listeners()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        using var metrics = new RelayMetrics();

        var error = await Assert.ThrowsAsync<IOException>(() => AdminServer.StartAsync((IPEndPoint)taken.LocalEndPoint!, metrics.Meter, () => null, NullLoggerFactory.Instance));

        Assert.Equal($"admin cannot listen on {taken.LocalEndPoint}: address already in use", error.Message);
    }

    /// <summary>
    /// A start that fails leaves nothing listening to the meter: the page's listener measured every instrument for good
    /// after an admin listener that never started, in a process that went on (an embedding application).
    /// </summary>
    [Fact]
    public async Task A_failed_start_stops_measuring_the_meter()
    {
        using var meter = new System.Diagnostics.Metrics.Meter($"Passage.Tests.Admin.{Guid.NewGuid():N}");
        var counter = meter.CreateCounter<long>("passage.test.things");
        await using (var started = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meter, () => null, NullLoggerFactory.Instance))
        {
            Assert.True(counter.Enabled);
        }
        Assert.False(counter.Enabled);

        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        taken.Listen();
        await Assert.ThrowsAsync<IOException>(() => AdminServer.StartAsync((IPEndPoint)taken.LocalEndPoint!, meter, () => null, NullLoggerFactory.Instance));
        Assert.False(counter.Enabled);
    }

    /// <summary>
    /// Kestrel writes a warning for each connection it refuses beyond the limit, so that whoever could reach the port wrote
    /// lines at will once the slots were full. At most <see cref="KestrelHost.RefusalLinesPerWindow"/> are written per
    /// window, and the next one written after it is preceded by one line counting those left out.
    /// </summary>
    [Fact]
    public async Task Connections_refused_beyond_the_admin_limit_are_logged_within_a_budget()
    {
        var log = new RecordingLogger();
        using var factory = log.Factory();
        var time = new ManualTimeProvider();
        using var metrics = new RelayMetrics();
        await using var admin = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), metrics.Meter, () => null, factory, Timeouts.Default * 2, time);
        var held = new List<Socket>();
        try
        {
            // Three windows' worth of refusals, all within the first window of the clock that does not move.
            var beyond = KestrelHost.RefusalLinesPerWindow * 3;
            Assert.Equal(beyond, await ConnectAndCountClosedAsync(admin.LocalEndpoint, AdminServer.MaxConnections + beyond, held));
            Assert.Equal(KestrelHost.RefusalLinesPerWindow, log.Named("ConnectionRejected").Count);
            Assert.Empty(log.Named("RefusalLinesSkipped"));

            // In the next window, the first refusal is written after the count of those left out.
            time.Advance(TimeSpan.FromSeconds(10));
            Assert.Equal(1, await ConnectAndCountClosedAsync(admin.LocalEndpoint, 1, held));
            var skipped = Assert.Single(log.Named("RefusalLinesSkipped"));
            Assert.Equal(beyond - KestrelHost.RefusalLinesPerWindow, skipped.Value("Count"));
            // Kestrel's own line names no listener, and a tunnel end in the same process has its own budget: this one is said.
            Assert.Equal("admin listener", skipped.Value("Server"));
            Assert.Equal(KestrelHost.RefusalLinesPerWindow + 1, log.Named("ConnectionRejected").Count);
            var order = log.Entries.Select(e => e.Name).Where(n => n is "ConnectionRejected" or "RefusalLinesSkipped").TakeLast(2);
            Assert.Equal(["RefusalLinesSkipped", "ConnectionRejected"], order);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }
    }

    /// <summary>Opens <paramref name="count"/> connections to <paramref name="endpoint"/>, held in <paramref name="held"/>, and says how many the listener closed at once.</summary>
    private static async Task<int> ConnectAndCountClosedAsync(IPEndPoint endpoint, int count, List<Socket> held)
    {
        var opened = new List<Socket>();
        for (var i = 0; i < count; i++)
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            held.Add(socket);
            opened.Add(socket);
            await socket.ConnectAsync(endpoint).WaitAsync(Timeouts.Default);
        }
        var closed = await Task.WhenAll(opened.Select(s => Loopback.IsClosedByPeerAsync(s, TimeSpan.FromSeconds(2))));
        return closed.Count(c => c);
    }

    /// <summary>
    /// A cap's worth of connections that send nothing, stop halfway through a request head, or sit idle after a
    /// request would otherwise have kept every health check out for Kestrel's keep-alive timeout (130 s), as often as
    /// someone opened them again. The admin listener closes each once the idle timeout has passed, and /healthz
    /// answers again.
    /// </summary>
    [Fact]
    public async Task Silent_unfinished_and_idle_connections_are_closed_and_healthz_answers_again()
    {
        using var metrics = new RelayMetrics();
        await using var admin = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), metrics.Meter, () => null, NullLoggerFactory.Instance, TimeSpan.FromSeconds(2));
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < AdminServer.MaxConnections; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                held.Add(socket);
                await socket.ConnectAsync(admin.LocalEndpoint).WaitAsync(Timeouts.Default);
                switch (i % 3)
                {
                    case 1:
                        // A request head begun and never ended.
                        await Loopback.SendAllAsync(socket, "GET /healthz HTTP/1.1\r\nHost: admin\r\n"u8.ToArray());
                        break;
                    case 2:
                        // A whole request, answered; then nothing more.
                        await Loopback.SendAllAsync(socket, "GET /healthz HTTP/1.1\r\nHost: admin\r\n\r\n"u8.ToArray());
                        Assert.StartsWith("HTTP/1.1 200", await ConnectHarness.ReadHeadAsync(socket));
                        break;
                }
            }

            var closed = await Task.WhenAll(held.Select(s => Loopback.IsClosedByPeerAsync(s, Timeouts.Default)));
            Assert.All(closed, Assert.True);
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }

        await HealthzAnswersAsync(admin.LocalEndpoint);
    }

    /// <summary>Asks /healthz until it answers "ok" (a refused or reset connection is asked again), for at most <see cref="Timeouts.Default"/>.</summary>
    private static async Task HealthzAnswersAsync(IPEndPoint endpoint)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://{endpoint}"), Timeout = Timeouts.Default };
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            try
            {
                Assert.Equal("ok\n", await http.GetStringAsync("/healthz", cts.Token));
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(50, cts.Token);
            }
        }
    }

    /// <summary>A pass-through relay (every name to port 443) with its admin listener, both on loopback ports from the OS.</summary>
    private static Task<RelayHost> StartRelayWithAdminAsync() => RelayHost.StartAsync(new RelayOptions
    {
        Passthrough = new PassthroughOptions { Endpoints = [new IPEndPoint(IPAddress.Loopback, 0)], Routes = [new SniRoute("*", null, 443)] },
        AdminEndpoint = new IPEndPoint(IPAddress.Loopback, 0),
    });
}
