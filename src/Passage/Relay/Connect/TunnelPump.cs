using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// The last step of every CONNECT tunnel, HTTP/1.1 or HTTP/2: the <c>--require-tls</c> gate when
/// asked for, then the byte pump (which counts the bytes as it delivers them), then the count of how the tunnel ended.
/// </summary>
/// <remarks>
/// <see cref="StartAsync"/> returns once the pump runs; the tunnel's end is a <see cref="RelayedConnection"/>'s
/// continuation, so an idle HTTP/1.1 tunnel keeps no async frame of its own.
/// </remarks>
internal sealed class TunnelPump
{
    private readonly ConnectOptions _options;
    private readonly TimeSpan _handshakeTimeout;
    private readonly PumpOptions _pumpOptions;
    private readonly RelayMetrics _metrics;
    private readonly ILogger _logger;

    /// <summary>The counts of HTTP/1.1 tunnels (each its connection) and of HTTP/2 ones (each a request on one).</summary>
    private readonly Door _http1, _http2;

    public TunnelPump(ConnectOptions options, TimeSpan handshakeTimeout, PumpOptions pumpOptions, RelayMetrics metrics, ILogger logger)
    {
        _options = options;
        _handshakeTimeout = handshakeTimeout;
        _pumpOptions = pumpOptions;
        _metrics = metrics;
        _logger = logger;
        _http1 = new Door(this, ConnectRelay.FrontDoor);
        _http2 = new Door(this, ConnectRelay.Http2FrontDoor);
    }

    /// <summary>
    /// Starts the tunnel between <paramref name="client"/> and <paramref name="upstream"/>, which holds
    /// <paramref name="slot"/>, counted as an HTTP/1.1 one unless <paramref name="http2"/>. It takes the upstream and the
    /// slot at once; the client only when the tunnel starts (true): then all three are disposed when it ends, and its end
    /// is reported to <paramref name="end"/>. False: refused by the gate (the client is aborted; the caller disposes it).
    /// </summary>
    public async Task<bool> StartAsync(
        IDuplexConnection client,
        IDuplexConnection upstream,
        IDisposable? slot,
        ReadOnlyMemory<byte> preamble,
        long id,
        IConnectionEnd end,
        CancellationToken cancellationToken,
        bool http2 = false)
    {
        var door = http2 ? _http2 : _http1;
        var started = false;
        try
        {
            if (_options.RequireTls)
            {
                var hello = await RequireTlsGate.ReadClientHelloAsync(client, preamble, _handshakeTimeout, _pumpOptions.TimeProvider, cancellationToken).ConfigureAwait(false);
                if (hello is null)
                {
                    // A wait cut by the stop (or, over HTTP/2, by the client's reset) is no client that sent something else.
                    var (reason, detail) = !cancellationToken.IsCancellationRequested ? (RefusalReason.NotTls, "tunnel did not start with a TLS ClientHello")
                        : _stopping ? (RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail)
                        : (RefusalReason.ClientClosed, "client left before its ClientHello");
                    _metrics.Refused(door.FrontDoor, reason);
                    TunnelLog.Refused(_logger, id, reason.Name(), detail);
                    client.Abort();
                    return false;
                }
                preamble = hello;
            }
            // Counted where relaying starts, so that every tunnel counted opened is counted closed once.
            _metrics.TunnelOpened(door.FrontDoor);
            _metrics.TunnelOpen(1);
            new RelayedConnection(client, upstream, slot, door, end, id).Start(_pumpOptions, preamble, cancellationToken);
            started = true;
            return true;
        }
        finally
        {
            if (!started)
            {
                await upstream.DisposeAsync().ConfigureAwait(false);
                slot?.Dispose();
            }
        }
    }

    /// <summary>
    /// As <see cref="StartAsync"/>, for a caller whose own life is the tunnel's (an HTTP/2 request, counted under
    /// <see cref="ConnectRelay.Http2FrontDoor"/>): completes when the tunnel has ended, or at once when it did not start.
    /// </summary>
    public async Task RunAsync(IDuplexConnection client, IDuplexConnection upstream, IDisposable? slot, ReadOnlyMemory<byte> preamble, long id, CancellationToken cancellationToken)
    {
        var ended = new Awaited();
        if (await StartAsync(client, upstream, slot, preamble, id, ended, cancellationToken, http2: true).ConfigureAwait(false))
        {
            await ended.Task.ConfigureAwait(false);
        }
    }

    private volatile bool _stopping;

    /// <summary>The relay has begun to stop: a tunnel cancelled from now on was cancelled by the stop.</summary>
    public void Stopping() => _stopping = true;

    /// <summary>Whether the relay has begun to stop (<see cref="Stopping"/>).</summary>
    public bool IsStopping => _stopping;

    private volatile bool _closingAll;

    /// <summary>
    /// The drain is over: the relay closes every connection still open. Called before it does, so that each tunnel that
    /// ends from now on is counted shut down however its end reached the pump (an HTTP/2 tunnel's stream may fail
    /// as the client's side before its request's cancellation is seen).
    /// </summary>
    public void ClosingAll() => _closingAll = true;

    /// <summary>Counts and logs a tunnel's end under <paramref name="frontDoor"/>.</summary>
    private void Relayed(string frontDoor, long id, PumpResult relayed)
    {
        if (_closingAll)
        {
            relayed = relayed with { End = PumpEnd.Canceled };
        }
        else if (relayed.End == PumpEnd.Canceled && !_stopping)
        {
            // While the relay runs, only an HTTP/2 tunnel is cancelled (its request aborted): its client reset the
            // stream or dropped the connection. That is the client's end, not a shutdown.
            relayed = relayed with { End = PumpEnd.Failed, FailedSide = PumpSide.Client };
        }
        _metrics.Relayed(frontDoor, relayed);
        TunnelLog.Closed(_logger, id, relayed.End, relayed.FailedSide, relayed.ClientToUpstreamBytes, relayed.UpstreamToClientBytes);
        _metrics.TunnelOpen(-1);
    }

    /// <summary>Where the tunnels of one kind are counted: the <c>front_door</c> tag of their counts.</summary>
    private sealed class Door(TunnelPump pump, string frontDoor) : IRelayAccounting
    {
        public string FrontDoor => frontDoor;

        /// <inheritdoc />
        public void Relayed(long id, PumpResult result) => pump.Relayed(frontDoor, id, result);
    }

    /// <summary>A tunnel's end as a task, for <see cref="RunAsync"/>.</summary>
    private sealed class Awaited() : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously), IConnectionEnd
    {
        public void Ended(long id, Exception? fault)
        {
            if (fault is null)
            {
                TrySetResult();
            }
            else
            {
                TrySetException(fault);
            }
        }
    }
}
