using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay;

/// <summary>
/// The accepting half of every relay front door: binds its endpoints, accepts, enforces the
/// open-connection limit (refusing beyond it, then pausing: see below) and the limit per client (refusing beyond it,
/// without a pause), hands each connection to a handler, and drains on stop.
/// </summary>
/// <remarks>
/// Lifecycle: created → <see cref="Start"/> (listening) → <see cref="StopAsync"/> (draining: no new
/// connections, open ones may finish until the drain timeout, then are closed) → stopped.
/// <see cref="StopAsync"/> and <see cref="DisposeAsync"/> are idempotent. The handler owns the
/// accepted socket; it must watch the token, which is cancelled at the drain deadline.
/// A connection counts as open from accept until it has ended: when its handler's setup completes
/// without handing it on, or when the relay it was handed to reports its end (<see cref="IConnectionEnd"/>);
/// nothing awaits a relayed connection in between.
/// <para>A refusal (over the limit, or at the edge of the open-file limit) pauses accepting for <see cref="AcceptPause"/>,
/// or until a connection ends, or until stopping: the clients that come meanwhile wait in the listen backlog and are
/// accepted as soon as there is room, rather than each being accepted and reset at once. Clients that reconnect as soon
/// as they are reset would otherwise keep the loop accepting and resetting (about 6,600 times a second with 40 of them),
/// on the cores the admitted connections need.</para>
/// </remarks>
internal sealed partial class FrontDoorListener : IAsyncDisposable, IConnectionEnd
{
    private readonly string _frontDoor;
    private readonly string _metricsFrontDoor;
    private readonly IReadOnlyList<IPEndPoint> _endpoints;
    private readonly RelayLimits _limits;
    private readonly ILogger _logger;
    private readonly RelayMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly ConnectionHandler _handler;
    private readonly List<Socket> _listeners = new();
    private readonly List<Task> _acceptLoops = new();
    private readonly CancellationTokenSource _closeAll = new();
    private readonly CancellationTokenSource _stopAccepting = new();
    private readonly object _gate = new();
    private TaskCompletionSource _allClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    // Set while an accept loop pauses; completed when a connection ends.
    private TaskCompletionSource? _slotFreed;
    private int _open;
    // Open connections per client (ClientKey), and the client of each open connection by id, for its end: a
    // dictionary entry per connection, the client's count shared by its connections.
    private readonly Dictionary<IPAddress, ClientConnections> _perClient = new();
    private readonly Dictionary<long, ClientConnections> _clientOf = new();
    private readonly LogBudget _clientLimitWarnings;
    private long _nextConnectionId;
    private int _limitLogged;
    private Task? _stopping;
    // Set once every endpoint is bound: a front door that never listened has nothing to drain or to say at stop.
    private bool _started;

    /// <summary>Creates the listener; nothing listens until <see cref="Start"/>.</summary>
    /// <param name="frontDoor">Its name in log lines, and its <c>front_door</c> tag unless <paramref name="metricsFrontDoor"/> is given.</param>
    /// <param name="endpoints">Where it listens.</param>
    /// <param name="limits">Connection cap and drain time.</param>
    /// <param name="handler">Serves each accepted connection.</param>
    /// <param name="logger">For its own lines.</param>
    /// <param name="metrics">Where it counts accepted and refused connections.</param>
    /// <param name="time">The clock.</param>
    /// <param name="metricsFrontDoor">
    /// The <c>front_door</c> tag of what it counts, when that is not <paramref name="frontDoor"/>: the tag its handlers count
    /// the same connections' later fates under, so that a front door's counts add up.
    /// </param>
    public FrontDoorListener(
        string frontDoor,
        IReadOnlyList<IPEndPoint> endpoints,
        RelayLimits limits,
        ConnectionHandler handler,
        ILogger logger,
        RelayMetrics metrics,
        TimeProvider time,
        string? metricsFrontDoor = null)
    {
        _frontDoor = frontDoor;
        _metricsFrontDoor = metricsFrontDoor ?? frontDoor;
        _endpoints = endpoints;
        _limits = limits;
        _handler = handler;
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _clientLimitWarnings = new LogBudget(ClientLimitWarningsPerWindow, TimeSpan.FromSeconds(10), time);
        _allClosed.TrySetResult();
    }

    /// <summary>The addresses actually bound (with the OS-chosen ports), once started.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>Client connections open now.</summary>
    public int OpenConnections => Volatile.Read(ref _open);

    // Linux's <sys/socket.h>.
    private const int SolSocket = 1;
    private const int SoReuseAddr = 2;

    /// <summary>
    /// Binds every endpoint and starts accepting. Throws <see cref="IOException"/> naming this front door and the endpoint
    /// if one cannot be bound (the <see cref="SocketException"/> inside it).
    /// </summary>
    public void Start()
    {
        OpenFileLimit.HoldSpares();
        var bound = new List<IPEndPoint>();
        try
        {
            foreach (var endpoint in _endpoints)
            {
                var listener = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                _listeners.Add(listener);
                if (endpoint.AddressFamily == AddressFamily.InterNetworkV6 && endpoint.Address.Equals(IPAddress.IPv6Any))
                {
                    listener.DualMode = true;
                }
                // Restarting while old connections sit in TIME_WAIT must not fail the bind: SO_REUSEADDR, set as it is.
                // Not through .NET's ReuseAddress, which on Linux sets SO_REUSEPORT too: a second relay (or a second
                // front door) on the same address and port then bound as well, and the kernel split the connections
                // between them.
                if (OperatingSystem.IsLinux())
                {
                    listener.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
                }
                try
                {
                    listener.Bind(endpoint);
                    // As long a backlog as the kernel allows (net.core.somaxconn, 4096 on current kernels): in a
                    // storm of new connections a full queue drops SYNs, and each dropped one costs its client a
                    // retransmission a second later, a far worse wait than queueing.
                    listener.Listen();
                }
                catch (SocketException e)
                {
                    // "Address already in use" alone leaves the operator to guess which of the listeners it was.
                    throw new IOException($"{_frontDoor} cannot listen on {endpoint}: {e.Message}", e);
                }
                bound.Add((IPEndPoint)listener.LocalEndPoint!);
            }
        }
        catch
        {
            foreach (var listener in _listeners)
            {
                listener.Dispose();
            }
            _listeners.Clear();
            throw;
        }
        LocalEndpoints = bound;
        for (var i = 0; i < _listeners.Count; i++)
        {
            Log.Listening(_logger, _frontDoor, bound[i]);
            _acceptLoops.Add(AcceptLoopAsync(_listeners[i]));
        }
        _started = true;
    }

    /// <summary>
    /// Stops accepting, lets open connections finish for up to the drain timeout, then closes the
    /// rest. <paramref name="cancellationToken"/> cuts the drain short (a second Ctrl-C).
    /// </summary>
    public Task StopAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            _stopping ??= StopCoreAsync(cancellationToken);
            return _stopping;
        }
    }

    private async Task StopCoreAsync(CancellationToken cancellationToken)
    {
        // An accept loop paused after a refusal ends its pause now, not at its end.
        await _stopAccepting.CancelAsync().ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            listener.Dispose();
        }
        await Task.WhenAll(_acceptLoops).ConfigureAwait(false);
        if (!_started)
        {
            // Its bind failed (the start's error says so): "stopping ... 30s to finish" would only muddle that.
            return;
        }
        Log.Draining(_logger, _frontDoor, OpenConnections, Configuration.Duration.Format(_limits.DrainTimeout));

        Task allClosed;
        lock (_gate)
        {
            allClosed = _allClosed.Task;
        }
        var closed = 0;
        var atSignal = false;
        try
        {
            await allClosed.WaitAsync(_limits.DrainTimeout, _time, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or OperationCanceledException)
        {
            closed = OpenConnections;
            atSignal = e is OperationCanceledException;
            await _closeAll.CancelAsync().ConfigureAwait(false);
            // Every handler observes the token and aborts its sockets, so this is quick.
            try
            {
                await allClosed.WaitAsync(TimeSpan.FromSeconds(10), _time, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // A handler ignored the token (a bug): say so and stop anyway rather than hang or crash.
                Log.StuckAtStop(_logger, _frontDoor, OpenConnections);
            }
        }
        if (atSignal)
        {
            // Told to stop at once (a second signal, or disposed) before the drain deadline: not the deadline's doing.
            Log.StoppedAtSignal(_logger, _frontDoor, closed);
        }
        else
        {
            Log.Stopped(_logger, _frontDoor, closed);
        }
    }

    /// <summary>
    /// How long accepting pauses at most after a refusal (over the limit, or at the edge of the open-file limit), and
    /// when the process is out of descriptors or memory: at most one connection is refused per pause.
    /// </summary>
    internal static readonly TimeSpan AcceptPause = AcceptGuard.Pause;

    private async Task AcceptLoopAsync(Socket listener)
    {
        var guard = new AcceptGuard();
        while (true)
        {
            Socket client;
            try
            {
                // The overload with a token gives a ValueTask: the one without wraps it in a Task, an object per accept.
                client = await listener.AcceptAsync(CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted })
            {
                return; // The listener was closed: stopping.
            }
            catch (SocketException e) when (AcceptGuard.IsShortage(e))
            {
                // Out of descriptors (EMFILE, ENFILE) or kernel memory: the connection waits in the listen backlog.
                // The descriptor budget keeps the relay from getting here by itself; something else did (a limit
                // lowered under the running process, say).
                if (guard.Failed())
                {
                    Log.AcceptPaused(_logger, _frontDoor, e.SocketErrorCode, AcceptPause.TotalMilliseconds);
                }
                await PauseAsync(atLimit: false).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }
            catch (SocketException)
            {
                // A connection that died in the backlog (reset before accept): nothing to answer.
                continue;
            }
            _metrics.Accepted(_metricsFrontDoor);
            var id = Interlocked.Increment(ref _nextConnectionId);
            if (!guard.MayKeep(client, out var firstInHeadroom))
            {
                // Fewer descriptors left than the runtime may need at any moment (a thread pool worker's start takes
                // two), or still at the edge after running out: refused like one over the limit, before its upstream
                // takes another, until enough have closed.
                if (firstInHeadroom)
                {
                    Log.DescriptorHeadroomReached(_logger, _frontDoor, OpenFileLimit.Headroom, OpenFileLimit.Current, AcceptPause.TotalMilliseconds);
                }
                Refuse(client, id, outOfDescriptors: true);
                await PauseAsync(atLimit: false).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                continue;
            }
            var clientKey = ClientKey.Of((client.RemoteEndPoint as IPEndPoint)?.Address);
            switch (TryTrack(clientKey, id))
            {
                case Admission.Admitted:
                    _ = RunConnectionAsync(client, id);
                    break;
                case Admission.AtLimit:
                    Refuse(client, id);
                    await PauseAsync(atLimit: true).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                    break;
                default:
                    // One client at its own limit: no pause, which would make everyone else wait for it.
                    RefuseClient(client, id, clientKey);
                    break;
            }
        }
    }

    /// <summary>
    /// The wait after a refusal before the next accept: <see cref="AcceptPause"/>, until a connection ends (its slot and
    /// descriptors free), or until stopping, whichever comes first; not at all when <paramref name="atLimit"/> and a slot
    /// has come free since the refusal. Ends in a <see cref="TimeoutException"/> or <see cref="OperationCanceledException"/>
    /// when no connection ended: the caller suppresses either.
    /// </summary>
    private Task PauseAsync(bool atLimit)
    {
        Task freed;
        lock (_gate)
        {
            if (atLimit && _open < _limits.MaxConnections)
            {
                return Task.CompletedTask;
            }
            freed = (_slotFreed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).Task;
        }
        return freed.WaitAsync(AcceptPause, _time, _stopAccepting.Token);
    }

    private async Task RunConnectionAsync(Socket client, long id)
    {
        bool relayed;
        try
        {
            relayed = await _handler(client, id, this, _closeAll.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // The handler returns failures as values; anything here is a bug. Keep serving others.
            Log.ConnectionFault(_logger, id, e);
            client.Dispose();
            relayed = false;
        }
        if (!relayed)
        {
            Untrack(id);
        }
    }

    /// <inheritdoc />
    void IConnectionEnd.Ended(long id, Exception? fault)
    {
        if (fault is not null)
        {
            Log.ConnectionFault(_logger, id, fault);
        }
        Untrack(id);
    }

    /// <summary>A client's open connections on this front door (counted under <see cref="_gate"/>).</summary>
    private sealed class ClientConnections(IPAddress key)
    {
        public IPAddress Key { get; } = key;

        public int Open { get; set; }
    }

    private enum Admission
    {
        Admitted,
        AtLimit,
        ClientAtLimit,
    }

    /// <summary>Counts connection <paramref name="id"/> of <paramref name="clientKey"/> open, unless a limit is reached.</summary>
    private Admission TryTrack(IPAddress clientKey, long id)
    {
        lock (_gate)
        {
            if (_open >= _limits.MaxConnections)
            {
                return Admission.AtLimit;
            }
            var ofClient = _perClient.GetValueOrDefault(clientKey);
            if (ofClient?.Open >= _limits.MaxConnectionsPerClient)
            {
                return Admission.ClientAtLimit;
            }
            if (ofClient is null)
            {
                _perClient.Add(clientKey, ofClient = new ClientConnections(clientKey));
            }
            ofClient.Open++;
            _clientOf.Add(id, ofClient);
            if (_open++ == 0)
            {
                _allClosed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }
        _metrics.Open(1);
        return Admission.Admitted;
    }

    private void Untrack(long id)
    {
        _metrics.Open(-1);
        TaskCompletionSource? freed;
        lock (_gate)
        {
            if (_clientOf.Remove(id, out var ofClient) && --ofClient.Open == 0)
            {
                _perClient.Remove(ofClient.Key);
            }
            if (--_open == 0)
            {
                _allClosed.TrySetResult();
            }
            freed = _slotFreed;
            _slotFreed = null;
        }
        freed?.TrySetResult();
    }

    /// <summary>
    /// Resets <paramref name="client"/> at once, counted as <c>connection_limit_reached</c>: over the open-connection
    /// limit, or (<paramref name="outOfDescriptors"/>, which the accept pause or the headroom warning has already
    /// logged) at the edge of the open-file limit.
    /// </summary>
    private void Refuse(Socket client, long id, bool outOfDescriptors = false)
    {
        _metrics.Refused(_metricsFrontDoor, RefusalReason.ConnectionLimit);
        if (!outOfDescriptors && Interlocked.Exchange(ref _limitLogged, 1) == 0)
        {
            Log.ConnectionLimitReached(_logger, _limits.MaxConnections, AcceptPause.TotalMilliseconds);
        }
        Log.RefusedAtLimit(_logger, id);
        // Refused at once: a reset, no read, no answer to wait for.
        SocketReset.Close(client);
    }

    /// <summary>Warnings about clients at their own limit written per front door per 10 s at most: a client causes them at will.</summary>
    internal const int ClientLimitWarningsPerWindow = 10;

    /// <summary>
    /// Resets <paramref name="client"/> at once, counted as <c>connection_limit_reached</c>: its client
    /// (<paramref name="clientKey"/>) holds <see cref="RelayLimits.MaxConnectionsPerClient"/> open connections already.
    /// </summary>
    private void RefuseClient(Socket client, long id, IPAddress clientKey)
    {
        _metrics.Refused(_metricsFrontDoor, RefusalReason.ConnectionLimit);
        if (_clientLimitWarnings.TryTakeWarning(_logger, this, static (logger, count, budget, self) => Log.ClientLimitLinesSkipped(logger, self._frontDoor, count, (int)budget.Window.TotalSeconds)))
        {
            Log.ClientLimitReached(_logger, _frontDoor, _limits.MaxConnectionsPerClient);
        }
        Log.ClientLimitRefused(_logger, id, clientKey);
        SocketReset.Close(client);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        _closeAll.Dispose();
        _stopAccepting.Dispose();
    }
}
