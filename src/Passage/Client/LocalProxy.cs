using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Client.HttpProxy;
using Passage.Client.Socks5;
using Passage.Relay;
using Passage.Telemetry;

namespace Passage.Client;

/// <summary>
/// The local front doors of <c>passage client</c>: SOCKS5 and an HTTP proxy on loopback, each
/// connection a tunnel through a <see cref="PassageClient"/>.
/// </summary>
public sealed partial class LocalProxy : IAsyncDisposable
{
    private readonly List<FrontDoorListener> _listeners = new();

    private LocalProxy()
    {
    }

    /// <summary>The SOCKS5 endpoints actually bound.</summary>
    public IReadOnlyList<IPEndPoint> SocksEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>The HTTP proxy endpoints actually bound.</summary>
    public IReadOnlyList<IPEndPoint> HttpEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>
    /// Binds the front doors and starts serving. Their connections are counted in <paramref name="metrics"/>, by default the
    /// client's own (<see cref="PassageClient.Metrics"/>), and those that ended in the client's own always
    /// (<c>passage.client.connections.closed</c>).
    /// </summary>
    public static LocalProxy Start(PassageClient client, LocalProxyOptions options, ILoggerFactory? loggerFactory = null, RelayMetrics? metrics = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        var time = timeProvider ?? TimeProvider.System;
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<LocalProxy>();
        metrics ??= client.Metrics.FrontDoors;
        // Each local connection holds its socket and its own connection to a relay: two descriptors. Out of them the
        // process would abort, so the cap fits the open-file limit (see DescriptorBudget).
        var listeners = (options.SocksEndpoints.Count > 0 ? 1 : 0) + (options.HttpEndpoints.Count > 0 ? 1 : 0);
        var openFiles = Transport.OpenFileLimit.Current;
        var maxConnections = DescriptorBudget.FitConnections(options.MaxConnections, listeners, 2, openFiles);
        if (maxConnections < options.MaxConnections)
        {
            CapLowered(logger, openFiles!.Value, options.MaxConnections, listeners, maxConnections);
        }
        // No cap per client of its own: the applications are this host's (one loopback address) or users who log in.
        var limits = new RelayLimits
        {
            MaxConnections = maxConnections, MaxConnectionsPerClient = maxConnections, IdleTimeout = options.IdleTimeout, DrainTimeout = TimeSpan.FromSeconds(5),
        };
        // Tunnel streams are never plain sockets here, so the copy path is always the one used. Its bytes are counted as
        // they are delivered, as a relay's are.
        var pump = limits.PumpOptions(time, metrics.Bytes);
        var proxy = new LocalProxy();
        try
        {
            if (options.SocksEndpoints.Count > 0)
            {
                var socks = new Socks5Session(client, options, metrics, pump, time);
                var listener = new FrontDoorListener("socks", options.SocksEndpoints, limits, ServedToTheEnd(socks.HandleAsync, client.Metrics, "socks"), logger, metrics, time);
                proxy._listeners.Add(listener);
                listener.Start();
                proxy.SocksEndpoints = listener.LocalEndpoints;
            }
            if (options.HttpEndpoints.Count > 0)
            {
                var http = new HttpProxySession(client, options, metrics, pump, time);
                var listener = new FrontDoorListener("http-proxy", options.HttpEndpoints, limits, ServedToTheEnd(http.HandleAsync, client.Metrics, "http-proxy"), logger, metrics, time);
                proxy._listeners.Add(listener);
                listener.Start();
                proxy.HttpEndpoints = listener.LocalEndpoints;
            }
        }
        catch
        {
            // A front door that started is stopped before the error returns: its port free again, and nothing of it left
            // to run (and log) behind a caller that reports the error and exits. Quick: disposal closes at once what it may have
            // accepted meanwhile, and never waits for the thread that blocks here (its awaits are ConfigureAwait(false)).
            foreach (var listener in proxy._listeners)
            {
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            throw;
        }
        return proxy;
    }

    /// <summary>
    /// These sessions serve each connection to its end in one task (their tunnels are streams through
    /// the client, not a relay's idle sockets by the ten thousand), so nothing is handed on, and the connection is
    /// counted closed in <paramref name="metrics"/> as its task ends.
    /// </summary>
    private static ConnectionHandler ServedToTheEnd(Func<Socket, long, CancellationToken, Task> serve, ClientMetrics metrics, string frontDoor) =>
        async (socket, id, _, closeAll) =>
        {
            try
            {
                await serve(socket, id, closeAll).ConfigureAwait(false);
            }
            finally
            {
                metrics.ConnectionClosed(frontDoor);
            }
            return false;
        };

    /// <summary>Stops accepting and lets open tunnels finish briefly.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) =>
        Task.WhenAll(_listeners.Select(l => l.StopAsync(cancellationToken)));

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
    }

    [LoggerMessage(LogEvents.ClientCapLowered, LogLevel.Warning,
        "The open-file limit ({Limit}) is below what client.maxConnections {Connections} needs (two descriptors per connection, "
        + "its own and its relay's, on each of {Listeners} listeners, with room kept for the process); using {Fitted}. "
        + "Raise the limit (ulimit -n, LimitNOFILE=) to lift this",
        EventName = "CapLowered")]
    private static partial void CapLowered(ILogger logger, long limit, int connections, int listeners, int fitted);
}
