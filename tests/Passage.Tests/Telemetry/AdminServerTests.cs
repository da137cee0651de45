using System.Net;
using Passage.Relay;
using Passage.Relay.Passthrough;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Telemetry;

/// <summary>The admin listener of a relay: /metrics in Prometheus text, /healthz.</summary>
public sealed class AdminServerTests
{
    [Fact]
    public async Task Metrics_show_aggregate_counters_and_healthz_answers_until_stopping()
    {
        var options = new RelayOptions
        {
            Passthrough = new PassthroughOptions { Endpoints = [new IPEndPoint(IPAddress.Loopback, 0)], Routes = [new SniRoute("*", null, 443)] },
            AdminEndpoint = new IPEndPoint(IPAddress.Loopback, 0),
        };
        await using var host = await RelayHost.StartAsync(options);
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
}
