using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Passage.Telemetry;

/// <summary>
/// The admin listener: <c>GET /metrics</c> (Prometheus text) and <c>GET /healthz</c>. Bind it to a
/// loopback or management address: it has no authentication.
/// </summary>
public sealed class AdminServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly PrometheusText _metrics;

    private AdminServer(WebApplication app, PrometheusText metrics, IPEndPoint endpoint)
    {
        _app = app;
        _metrics = metrics;
        LocalEndpoint = endpoint;
    }

    /// <summary>The address actually bound.</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Starts serving the counters of <paramref name="metrics"/> on <paramref name="endpoint"/>.</summary>
    public static async Task<AdminServer> StartAsync(IPEndPoint endpoint, RelayMetrics metrics, Func<bool> healthy, ILoggerFactory loggerFactory)
    {
        var prometheus = new PrometheusText(metrics.Meter);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Production" });
        builder.Services.AddSingleton(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Listen(endpoint);
        });
        var app = builder.Build();
        app.MapGet("/metrics", () => Results.Text(prometheus.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/healthz", () => healthy() ? Results.Text("ok\n") : Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable));
        await app.StartAsync().ConfigureAwait(false);
        var bound = new Uri(app.Urls.First());
        return new AdminServer(app, prometheus, new IPEndPoint(endpoint.Address, bound.Port));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }
}
