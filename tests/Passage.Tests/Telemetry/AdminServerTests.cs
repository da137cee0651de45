using System.Net;
using Passage.Relay;
using Passage.Relay.Passthrough;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

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

        await host.StopAsync();
        using var stopping = await http.GetAsync("/healthz");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, stopping.StatusCode);
    }

    /// <summary>
    /// Whoever reaches the admin port could otherwise hold connections until the relay runs out of descriptors (and
    /// the process aborts): beyond <see cref="AdminServer.MaxConnections"/> one more is closed at once.
    /// </summary>
    [Fact]
    public async Task Connections_beyond_the_admin_limit_are_closed_at_once_and_room_comes_back()
    {
        await using var host = await StartRelayWithAdminAsync();
        var held = new List<System.Net.Sockets.Socket>();
        try
        {
            for (var i = 0; i < AdminServer.MaxConnections + 8; i++)
            {
                var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
                held.Add(socket);
                await socket.ConnectAsync(host.AdminEndpoint!).WaitAsync(Timeouts.Default);
            }
            // Idle connections are kept for Kestrel's header timeout (30 s); only those beyond the limit close now.
            // Which ones is Kestrel's order of dispatch, not quite the order of connecting: only the count is checked.
            var closed = await Task.WhenAll(held.Select(s => Loopback.IsClosedByPeerAsync(s, TimeSpan.FromSeconds(2))));
            Assert.Equal(8, closed.Count(c => c));
        }
        finally
        {
            held.ForEach(s => s.Dispose());
        }

        using var http = new HttpClient { BaseAddress = new Uri($"http://{host.AdminEndpoint}"), Timeout = Timeouts.Default };
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            try
            {
                Assert.Equal("ok\n", await http.GetStringAsync("/healthz", cts.Token));
                break;
            }
            catch (HttpRequestException)
            {
                // A slot is freed once Kestrel has seen its connection close.
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
