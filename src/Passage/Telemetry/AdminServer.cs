using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Transport;

namespace Passage.Telemetry;

/// <summary>
/// The admin listener: <c>GET /metrics</c> (Prometheus text) and <c>GET /healthz</c>. Bind it to a
/// loopback or management address: it has no authentication.
/// </summary>
public sealed partial class AdminServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly PrometheusText _metrics;

    private AdminServer(WebApplication app, PrometheusText metrics, IPEndPoint endpoint)
    {
        _app = app;
        _metrics = metrics;
        LocalEndpoint = endpoint;
    }

    /// <summary>Connections the admin listener holds at once.</summary>
    public const int MaxConnections = 32;

    /// <summary>The address actually bound.</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Starts serving the counters of <paramref name="metrics"/> on <paramref name="endpoint"/>.</summary>
    public static async Task<AdminServer> StartAsync(IPEndPoint endpoint, RelayMetrics metrics, Func<bool> healthy, ILoggerFactory loggerFactory)
    {
        var prometheus = new PrometheusText(metrics.Meter);
        var builder = KestrelHost.CreateBuilder(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A scraper and a health check need a few; anyone who can reach the port must not be able to spend the
            // relay's descriptors on it. One more is closed at once.
            kestrel.Limits.MaxConcurrentConnections = MaxConnections;
            kestrel.Listen(endpoint);
        });
        var app = builder.Build();
        app.MapGet("/metrics", () => Results.Text(prometheus.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/healthz", () => healthy() ? Results.Text("ok\n") : Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable));
        await app.StartAsync().ConfigureAwait(false);
        var bound = new IPEndPoint(endpoint.Address, new Uri(app.Urls.Single()).Port);
        Listening(loggerFactory.CreateLogger<AdminServer>(), bound);
        return new AdminServer(app, prometheus, bound);
    }

    [LoggerMessage(LogEvents.AdminListening, LogLevel.Information, "admin listening on {Endpoint} (/metrics, /healthz)", EventName = "AdminListening")]
    private static partial void Listening(ILogger logger, IPEndPoint endpoint);

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }
}
