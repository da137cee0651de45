using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Transport;

namespace Passage.Telemetry;

/// <summary>
/// The admin listener: <c>GET /metrics</c> (Prometheus text: the counters of one meter, a relay's, a client's or a
/// tunnel end's, then the process figures of <see cref="ProcessMetrics"/>) and <c>GET /healthz</c> (200 <c>ok</c>, or 503
/// saying why not). Bind it to a loopback or management address: it has no authentication.
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

    /// <summary>
    /// Starts serving the counters of <paramref name="metrics"/> on <paramref name="endpoint"/>; <c>/healthz</c> answers 503
    /// <c>stopping</c> once <paramref name="healthy"/> says false.
    /// </summary>
    public static Task<AdminServer> StartAsync(IPEndPoint endpoint, RelayMetrics metrics, Func<bool> healthy, ILoggerFactory loggerFactory)
    {
        ArgumentNullException.ThrowIfNull(metrics);
        return StartAsync(endpoint, metrics.Meter, () => healthy() ? null : "stopping", loggerFactory, IdleTimeout);
    }

    /// <summary>
    /// Starts serving the counters of <paramref name="meter"/> on <paramref name="endpoint"/>; <c>/healthz</c> answers 503
    /// with what <paramref name="unhealthy"/> says while it says something (why not: <c>stopping</c>, <c>no usable
    /// relay</c>), 200 <c>ok</c> while it says null.
    /// </summary>
    public static Task<AdminServer> StartAsync(IPEndPoint endpoint, Meter meter, Func<string?> unhealthy, ILoggerFactory loggerFactory) =>
        StartAsync(endpoint, meter, unhealthy, loggerFactory, IdleTimeout);

    /// <summary>
    /// As the public overload, with <paramref name="idleTimeout"/> in place of <see cref="IdleTimeout"/>, and the windows of
    /// the lines for connections refused beyond <see cref="MaxConnections"/> measured by <paramref name="time"/>.
    /// </summary>
    internal static async Task<AdminServer> StartAsync(IPEndPoint endpoint, Meter meter, Func<string?> unhealthy, ILoggerFactory loggerFactory, TimeSpan idleTimeout, TimeProvider? time = null)
    {
        var logger = loggerFactory.CreateLogger<AdminServer>();
        // The process figures follow the meter's on the page, under names no instrument may then have.
        var prometheus = new PrometheusText(meter, logger, ProcessMetrics.Names);
        var builder = KestrelHost.CreateBuilder("admin listener", loggerFactory, time);
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
            kestrel.Listen(endpoint, listen => listen.Protocols = HttpProtocols.Http1);
        });
        // Registered after Kestrel's own socket transport, so Kestrel binds with it (the last registered binds).
        builder.Services.AddSingleton<IConnectionListenerFactory>(new GuardedListenerFactory(logger));
        var app = builder.Build();
        // HEAD as well as GET (RFC 9110 §9.3.2): probes and load balancers often ask with HEAD.
        string[] methods = [HttpMethods.Get, HttpMethods.Head];
        app.MapMethods("/metrics", methods, () => Results.Text(prometheus.Render() + ProcessMetrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapMethods("/healthz", methods, () => unhealthy() is { } why
            ? Results.Text(why + "\n", statusCode: StatusCodes.Status503ServiceUnavailable)
            : Results.Text("ok\n"));
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing started keeps listening to the meter: a caller that goes on after a failed start (an embedding
            // application, say) would otherwise carry a listener measuring every instrument for good.
            prometheus.Dispose();
            await app.DisposeAsync().ConfigureAwait(false);
            if (e is IOException { InnerException: AddressInUseException })
            {
                // Kestrel's words ("Failed to bind to address http://127.0.0.1:9100: address already in use.") name no
                // listener, and a relay has several: said as the admin listener's other failures to bind are.
                throw new IOException($"admin cannot listen on {endpoint}: address already in use", e);
            }
            throw;
        }
        var bound = new IPEndPoint(endpoint.Address, new Uri(app.Urls.Single()).Port);
        Listening(logger, bound);
        if (!IPAddress.IsLoopback(bound.Address))
        {
            BeyondLoopback(logger, bound);
        }
        return new AdminServer(app, prometheus, bound);
    }

    [LoggerMessage(LogEvents.AdminBeyondLoopback, LogLevel.Warning, "admin listening on {Endpoint}, beyond loopback: /metrics and /healthz answer whoever reaches it, without authentication; bind it to loopback, or to a management network only its scrapers reach", EventName = "AdminBeyondLoopback")]
    private static partial void BeyondLoopback(ILogger logger, IPEndPoint endpoint);

    [LoggerMessage(LogEvents.AdminListening, LogLevel.Information, "admin listening on {Endpoint} (/metrics, /healthz)", EventName = "AdminListening")]
    private static partial void Listening(ILogger logger, IPEndPoint endpoint);

    [LoggerMessage(LogEvents.AdminAcceptPaused, LogLevel.Warning, "admin: accept failed ({Error}: out of descriptors or memory); spare descriptors released for the process, and accepting paused {PauseMs} ms at a time until the spares can be held again", EventName = "AdminAcceptPaused")]
    private static partial void AcceptPaused(ILogger logger, SocketError error, double pauseMs);

    /// <summary>
    /// Kestrel's transport for the admin listener: Kestrel's sockets, accepted by a loop of the relay's own. Kestrel's
    /// own loop, when accept fails, tries again at once: out of descriptors (EMFILE), with one client waiting, that spun
    /// at about half a core (2.2–2.8 s of CPU in 5 s; some 2,000 failed accepts a second under strace), and the spare
    /// descriptors stayed held. This one pauses as the front doors do (<see cref="AcceptGuard"/>; under 0.05 s of CPU in
    /// 5 s alike): the spares are released for the runtime, and the client waits in the backlog. A connection accepted on one of the last descriptors, kept free for the runtime
    /// (<see cref="OpenFileLimit.Headroom"/>), is closed at once, unanswered, as the front doors refuse theirs: a scrape
    /// must not take what a thread's start needs.
    /// </summary>
    private sealed class GuardedListenerFactory(ILogger logger) : IConnectionListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken)
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                if (endpoint is IPEndPoint { Address: var address } && address.Equals(IPAddress.IPv6Any))
                {
                    socket.DualMode = true;
                }
                socket.Bind(endpoint);
                socket.Listen();
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                socket.Dispose();
                // Reported by Kestrel as its own transport's is: "Failed to bind to address ...: address already in use."
                throw new AddressInUseException(e.Message, e);
            }
            catch (SocketException e)
            {
                socket.Dispose();
                // Kestrel names the address only when it is in use: "Cannot assign requested address" alone (an address not
                // on this machine) left the operator to guess which listener it was.
                throw new IOException($"admin cannot listen on {endpoint}: {e.Message}", e);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
            return ValueTask.FromResult<IConnectionListener>(new GuardedListener(socket, logger));
        }
    }

    /// <summary>The admin listener's bound socket, for Kestrel: see <see cref="GuardedListenerFactory"/>.</summary>
    private sealed class GuardedListener(Socket socket, ILogger logger) : IConnectionListener
    {
        private readonly SocketConnectionContextFactory _connections = new(new SocketConnectionFactoryOptions(), logger);
        private readonly AcceptGuard _guard = new();

        public EndPoint EndPoint { get; } = socket.LocalEndPoint!;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                Socket client;
                try
                {
                    client = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (Exception e) when (e is ObjectDisposedException or OperationCanceledException
                    or SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted })
                {
                    return null; // Unbound: stopping.
                }
                catch (SocketException e) when (AcceptGuard.IsShortage(e))
                {
                    if (_guard.Failed())
                    {
                        AcceptPaused(logger, e.SocketErrorCode, AcceptGuard.Pause.TotalMilliseconds);
                    }
                    await Task.Delay(AcceptGuard.Pause, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }
                catch (SocketException)
                {
                    // A connection that died in the backlog (reset before accept).
                    continue;
                }
                if (!_guard.MayKeep(client, out _))
                {
                    client.Dispose();
                    await Task.Delay(AcceptGuard.Pause, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    continue;
                }
                // As Kestrel's own transport sets it by default.
                client.NoDelay = true;
                return _connections.Create(client);
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            _connections.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().ConfigureAwait(false);
        await _app.DisposeAsync().ConfigureAwait(false);
        _metrics.Dispose();
    }
}
