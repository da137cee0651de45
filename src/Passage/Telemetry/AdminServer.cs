using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Transport;

namespace Passage.Telemetry;

/// <summary>
/// The admin listener: <c>GET /metrics</c> (Prometheus text: the relay's counters, then the process figures of
/// <see cref="ProcessMetrics"/>) and <c>GET /healthz</c>. Bind it to a
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

    /// <summary>
    /// How long a connection may sit silent (before its first request or between requests), and how long a request
    /// head may take once it has begun, before the admin listener closes the connection.
    /// </summary>
    public static readonly TimeSpan IdleTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The address actually bound.</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>Starts serving the counters of <paramref name="metrics"/> on <paramref name="endpoint"/>.</summary>
    public static Task<AdminServer> StartAsync(IPEndPoint endpoint, RelayMetrics metrics, Func<bool> healthy, ILoggerFactory loggerFactory) =>
        StartAsync(endpoint, metrics, healthy, loggerFactory, IdleTimeout);

    /// <summary>As the public overload, with <paramref name="idleTimeout"/> in place of <see cref="IdleTimeout"/>.</summary>
    internal static async Task<AdminServer> StartAsync(IPEndPoint endpoint, RelayMetrics metrics, Func<bool> healthy, ILoggerFactory loggerFactory, TimeSpan idleTimeout)
    {
        var prometheus = new PrometheusText(metrics.Meter);
        var builder = KestrelHost.CreateBuilder(loggerFactory);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // A scraper and a health check need a few; anyone who can reach the port must not be able to spend the
            // relay's descriptors on it. One more is closed at once.
            kestrel.Limits.MaxConcurrentConnections = MaxConnections;
            // With only that limit, connections that send nothing held every slot for Kestrel's keep-alive timeout
            // (130 s, also its wait for a new connection's first byte) and health checks were refused all that time,
            // again for whoever reopened them. A scraper sends its request at once and may reconnect for the next
            // one, so a connection silent for the idle timeout (5 s), before its first request or between requests,
            // is closed, and so is one whose request head has begun and not ended within it. (An unread request body
            // is drained for 5 s
            // at most, and a client reading its response at under 240 bytes/s is cut after a 5 s grace: Kestrel's
            // defaults, so neither holds a slot for long either.)
            kestrel.Limits.KeepAliveTimeout = idleTimeout;
            kestrel.Limits.RequestHeadersTimeout = idleTimeout;
            // HTTP/1.1 only (all a scraper speaks): there are no HTTP/2 connection windows or streams to keep.
            kestrel.Listen(endpoint, listen =>
            {
                listen.Protocols = HttpProtocols.Http1;
                // A connection accepted on one of the last descriptors, kept free for the runtime
                // (OpenFileLimit.Headroom), is closed at once, unanswered, as the front doors refuse theirs: a scrape
                // must not take what a thread's start needs. (Kestrel's own accept loop is not the relay's: should
                // accept itself fail for want of descriptors, it tries again at once.)
                listen.Use(next => connection =>
                    connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket && OpenFileLimit.InHeadroom(socket.Handle)
                        ? Task.CompletedTask
                        : next(connection));
            });
        });
        var app = builder.Build();
        // HEAD as well as GET (RFC 9110 §9.3.2): probes and load balancers often ask with HEAD.
        string[] methods = [HttpMethods.Get, HttpMethods.Head];
        app.MapMethods("/metrics", methods, () => Results.Text(prometheus.Render() + ProcessMetrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapMethods("/healthz", methods, () => healthy() ? Results.Text("ok\n") : Results.Text("stopping\n", statusCode: StatusCodes.Status503ServiceUnavailable));
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
