using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary><c>general.adminBindAddress</c>: each tunnel end's counters on /metrics and its session on /healthz, as real processes.</summary>
public sealed class TunnelAdminTests
{
    /// <summary>Both ends (and an end started again) with an admin listener on a port from the OS.</summary>
    private static readonly Dictionary<string, string?> WithAdmin = new() { ["PASSAGE__GENERAL__ADMINBINDADDRESS"] = "127.0.0.1:0" };

    private static long? Value(string metrics, string series) => AdminScraper.Value(metrics, series);

    [Fact]
    public async Task Both_ends_count_the_session_requests_and_link_bytes_and_healthz_follows_the_session()
    {
        await using var pair = await TunnelPair.StartAsync(environment: WithAdmin);
        using var clientAdmin = await AdminScraper.ForAsync(pair.Client);
        using var serverAdmin = await AdminScraper.ForAsync(pair.Server);
        // Up: the pair has seen the client end say so.
        Assert.Equal("ok\n", await clientAdmin.HealthWhenAsync(HttpStatusCode.OK));
        Assert.Equal("ok\n", await serverAdmin.HealthWhenAsync(HttpStatusCode.OK));

        using var http = pair.CreateHttpClient();
        Assert.Equal("GET /one", await http.GetStringAsync("/one").WaitAsync(Timeouts.Default));
        Assert.Equal("GET /two", await http.GetStringAsync("/two").WaitAsync(Timeouts.Default));

        // The server end counts a request once its answer is written, which may be just after the client end has read it.
        var server = await serverAdmin.MetricsWhenAsync(m => Value(m, "passage_tunnel_requests_total{outcome=\"answered\"}") == 2);
        var client = await clientAdmin.MetricsWhenAsync(m => Value(m, "passage_tunnel_requests_total{outcome=\"answered\"}") == 2);
        foreach (var metrics in new[] { client, server })
        {
            Assert.Equal(1, Value(metrics, "passage_tunnel_session_up"));
            Assert.Equal(1, Value(metrics, "passage_tunnel_sessions_established_total"));
            Assert.True(Value(metrics, "passage_tunnel_link_bytes_total{direction=\"sent\"}") > 0, metrics);
            Assert.True(Value(metrics, "passage_tunnel_link_bytes_total{direction=\"received\"}") > 0, metrics);
            Assert.Contains("process_open_fds ", metrics);
            // Aggregate only: no address, path or node ID in the exposition.
            Assert.DoesNotContain("127.0.0.1", metrics);
            Assert.DoesNotContain("/one", metrics);
            Assert.DoesNotContain(pair.ClientId.ToString(), metrics);
        }

        // The server end gone: the client end says so on /healthz and answers requests itself, counted refused.
        await pair.KillServerAsync();
        Assert.StartsWith("tunnel down: ", await clientAdmin.HealthWhenAsync(HttpStatusCode.ServiceUnavailable));
        using (var down = await http.GetAsync("/while-down").WaitAsync(Timeouts.Default))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
        }
        var whileDown = await clientAdmin.MetricsWhenAsync(m => m.Contains("passage_tunnel_requests_total{outcome=\"refused\",error=\"", StringComparison.Ordinal));
        Assert.Equal(0, Value(whileDown, "passage_tunnel_session_up"));

        // Back by itself: a second session.
        pair.ReplaceServer(pair.StartServer());
        Assert.Equal("ok\n", await clientAdmin.HealthWhenAsync(HttpStatusCode.OK));
        var again = await clientAdmin.MetricsAsync();
        Assert.Equal(1, Value(again, "passage_tunnel_session_up"));
        Assert.Equal(2, Value(again, "passage_tunnel_sessions_established_total"));
        using var restartedAdmin = await AdminScraper.ForAsync(pair.Server);
        Assert.Equal("ok\n", await restartedAdmin.HealthWhenAsync(HttpStatusCode.OK));
    }

    /// <summary>A server end no client end has reached yet says so: its session is what /healthz reports.</summary>
    [Fact]
    public async Task A_server_end_without_a_session_is_unhealthy_until_the_client_end_comes()
    {
        await using var pair = await TunnelPair.StartAsync(environment: WithAdmin);
        await pair.Client.DisposeAsync();
        using var serverAdmin = await AdminScraper.ForAsync(pair.Server);
        Assert.Equal("no session: the client end holds none\n", await serverAdmin.HealthWhenAsync(HttpStatusCode.ServiceUnavailable));
        Assert.Equal(0, Value(await serverAdmin.MetricsAsync(), "passage_tunnel_session_up"));
    }

    /// <summary>
    /// A backend that is a proxy itself may answer with a Proxy-Status of its own: that is the backend's answer, counted
    /// answered, and its error type (any string the backend chose) is no label. What the server end refuses itself is
    /// counted refused at both ends.
    /// </summary>
    [Fact]
    public async Task A_backends_own_Proxy_Status_is_counted_answered_and_a_server_end_refusal_refused_at_both_ends()
    {
        await using var backend = new RawBackend(new Dictionary<string, string>
        {
            ["/proxied"] = "HTTP/1.1 502 Bad Gateway\r\nProxy-Status: lb.example; error=made_up_by_the_backend\r\nContent-Length: 2\r\n\r\nno",
            ["/two-lengths"] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        });
        await using var pair = await TunnelPair.StartAsync(backendPort: backend.Port, environment: WithAdmin);
        using var clientAdmin = await AdminScraper.ForAsync(pair.Client);
        using var serverAdmin = await AdminScraper.ForAsync(pair.Server);
        using var http = pair.CreateHttpClient();
        using (var proxied = await http.GetAsync("/proxied").WaitAsync(Timeouts.Default))
        {
            Assert.Equal(HttpStatusCode.BadGateway, proxied.StatusCode);
            Assert.Equal("lb.example; error=made_up_by_the_backend", Assert.Single(proxied.Headers.GetValues("Proxy-Status")));
        }
        using (var refused = await http.GetAsync("/two-lengths").WaitAsync(Timeouts.Default))
        {
            Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
            Assert.False(refused.Headers.Contains("passage-tunnel-refused"));
        }

        const string Answered = "passage_tunnel_requests_total{outcome=\"answered\"}";
        const string Refused = "passage_tunnel_requests_total{outcome=\"refused\",error=\"http_protocol_error\"}";
        foreach (var admin in new[] { clientAdmin, serverAdmin })
        {
            var metrics = await admin.MetricsWhenAsync(m => Value(m, Answered) == 1 && Value(m, Refused) == 1);
            Assert.DoesNotContain("made_up_by_the_backend", metrics);
        }
    }

    [Fact]
    public async Task An_admin_address_not_here_is_one_line_naming_it_and_a_bad_one_is_named_by_its_key()
    {
        await using var pair = await TunnelPair.StartAsync();
        // 192.0.2.0/24 is for documentation (RFC 5737): bind(2) fails with EADDRNOTAVAIL.
        await using var elsewhere = pair.StartEnd("server2.json", pair.ServerConfig(""), new Dictionary<string, string?>
        {
            ["PASSAGE__GENERAL__BINDADDRESS"] = "127.0.0.1:0",
            ["PASSAGE__GENERAL__ADMINBINDADDRESS"] = "192.0.2.7:9090",
        });
        await elsewhere.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(1, elsewhere.ExitCode);
        Assert.Contains("Cannot start: admin cannot listen on 192.0.2.7:9090: ", elsewhere.StandardError);
        Assert.DoesNotContain("   at ", elsewhere.StandardError);

        var file = Path.Combine(pair.Directory, "bad.json");
        await File.WriteAllTextAsync(file, pair.ServerConfig("").Replace("\"mode\": \"server\"", "\"mode\": \"server\", \"adminBindAddress\": \"nowhere\"", StringComparison.Ordinal));
        var (exit, _, errors) = await PassageProcess.RunAsync(["config", "check", file]);
        Assert.Equal(1, exit);
        Assert.Contains("general.adminBindAddress: 'nowhere'", errors);
    }
}
