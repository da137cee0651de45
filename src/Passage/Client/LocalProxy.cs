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
public sealed class LocalProxy : IAsyncDisposable
{
    private readonly List<FrontDoorListener> _listeners = new();

    private LocalProxy()
    {
    }

    /// <summary>The SOCKS5 endpoints actually bound.</summary>
    public IReadOnlyList<IPEndPoint> SocksEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>The HTTP proxy endpoints actually bound.</summary>
    public IReadOnlyList<IPEndPoint> HttpEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>Binds the front doors and starts serving.</summary>
    public static LocalProxy Start(PassageClient client, LocalProxyOptions options, ILoggerFactory? loggerFactory = null, RelayMetrics? metrics = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(options);
        var time = timeProvider ?? TimeProvider.System;
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<LocalProxy>();
        metrics ??= new RelayMetrics();
        var limits = new RelayLimits { MaxConnections = options.MaxConnections, IdleTimeout = options.IdleTimeout, DrainTimeout = TimeSpan.FromSeconds(5) };
        // Tunnel streams are never plain sockets here, so the copy path is always the one used.
        var pump = limits.PumpOptions(time);
        var proxy = new LocalProxy();
        try
        {
            if (options.SocksEndpoints.Count > 0)
            {
                var socks = new Socks5Session(client, options, pump, time);
                var listener = new FrontDoorListener("socks", options.SocksEndpoints, limits, ServedToTheEnd(socks.HandleAsync), logger, metrics, time);
                proxy._listeners.Add(listener);
                listener.Start();
                proxy.SocksEndpoints = listener.LocalEndpoints;
            }
            if (options.HttpEndpoints.Count > 0)
            {
                var http = new HttpProxySession(client, options, metrics, pump, time);
                var listener = new FrontDoorListener("http-proxy", options.HttpEndpoints, limits, ServedToTheEnd(http.HandleAsync), logger, metrics, time);
                proxy._listeners.Add(listener);
                listener.Start();
                proxy.HttpEndpoints = listener.LocalEndpoints;
            }
        }
        catch
        {
            foreach (var listener in proxy._listeners)
            {
                _ = listener.DisposeAsync();
            }
            throw;
        }
        return proxy;
    }

    /// <summary>
    /// These sessions serve each connection to its end in one task (their tunnels are streams through
    /// the client, not a relay's idle sockets by the ten thousand), so nothing is handed on.
    /// </summary>
    private static ConnectionHandler ServedToTheEnd(Func<Socket, long, CancellationToken, Task> serve) =>
        async (socket, id, _, closeAll) =>
        {
            await serve(socket, id, closeAll).ConfigureAwait(false);
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
}
