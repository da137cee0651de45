using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Relay.Destinations;
using Passage.Telemetry;

namespace Passage.Relay.Passthrough;

/// <summary>
/// The blind pass-through relay: accepts TCP, reads the TLS ClientHello's server name without
/// terminating TLS, and relays the connection to the upstream its route names.
/// </summary>
/// <remarks>
/// Lifecycle: created → <see cref="Start"/> (listening) → <see cref="StopAsync"/> (draining: no new
/// connections, open ones may finish until the drain timeout, then are closed) → stopped.
/// <see cref="StopAsync"/> and <see cref="DisposeAsync"/> are idempotent.
/// </remarks>
public sealed partial class PassthroughRelay : IAsyncDisposable
{
    internal const string FrontDoor = "passthrough";

    private readonly FrontDoorListener _listener;

    /// <summary>Creates a relay; nothing listens until <see cref="Start"/>.</summary>
    public PassthroughRelay(
        PassthroughOptions options,
        RelayLimits limits,
        DestinationResolver resolver,
        ILoggerFactory? loggerFactory = null,
        RelayMetrics? metrics = null,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(resolver);
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<PassthroughRelay>();
        metrics ??= new RelayMetrics();
        var time = timeProvider ?? TimeProvider.System;
        var handler = new PassthroughConnectionHandler(options, limits, resolver, logger, metrics, time, () => LocalEndpoints);
        _listener = new FrontDoorListener(FrontDoor, options.Endpoints, limits, handler.HandleAsync, logger, metrics, time);
    }

    /// <summary>The addresses actually bound (with the OS-chosen ports), once started.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndpoints => _listener.LocalEndpoints;

    /// <summary>Client connections open now.</summary>
    public int OpenConnections => _listener.OpenConnections;

    /// <summary>Binds every endpoint and starts accepting. Throws <see cref="IOException"/> naming the endpoint if one cannot be bound.</summary>
    public void Start() => _listener.Start();

    /// <summary>
    /// Stops accepting, lets open connections finish for up to the drain timeout, then closes the
    /// rest. <paramref name="cancellationToken"/> cuts the drain short (a second Ctrl-C).
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _listener.StopAsync(cancellationToken);

    /// <inheritdoc />
    public ValueTask DisposeAsync() => _listener.DisposeAsync();
}
