using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Passage.Identity;

namespace Passage.Tunnel;

/// <summary>
/// The client end's one persistent HTTP/2 connection to the server end: opened at start (not at the first
/// request), kept alive with PINGs, watched through a session request that the server holds open, and
/// re-opened when lost. Requests share the same connection (one connection per origin, never a second one).
/// </summary>
/// <remarks>
/// <para>The session request is how the loss of the connection becomes visible at once: when the peer goes,
/// the socket fails or a PING goes unanswered for <c>maxIdleTimeout</c>, the connection is torn down and the
/// session request's body read fails. The loop then tries again at once, and every <c>connectInterval</c>
/// after a failed attempt. An attempt (connect, TLS, the session request's answer) is bounded by
/// <c>maxIdleTimeout</c>.</para>
/// <para>A server end that refuses this end's certificate cannot say so: in TLS 1.3 it checks the certificate only once
/// this end's side of the handshake is done, and then closes the connection (on Linux without an alert). The HTTP/2
/// client fails wherever that close finds it (writing its preface, reading the server's SETTINGS, a reset), with a
/// different exception each time; an attempt that fails after the server's certificate was accepted and before the
/// answer is therefore named as one cause, so that it keeps one line in the log and one Proxy-Status.</para>
/// <para>The phases are drawn on <see cref="TunnelPhase"/>.</para>
/// </remarks>
internal sealed class TunnelSession : IAsyncDisposable
{
    private readonly TunnelOptions _options;
    private readonly ILogger _logger;
    private readonly SocketsHttpHandler _handler;
    private readonly CancellationTokenSource _stop = new();
    private readonly TaskCompletionSource _firstAttempt = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string _server;
    private readonly string _nodeId;
    private Task? _loop;
    private readonly Lock _statusLock = new();
    // Changes not yet raised, in the order made; _raising while a thread raises them.
    private readonly Queue<TunnelStatus> _events = new();
    private bool _raising;
    // A subscriber has thrown (and that was logged).
    private bool _subscriberFailed;
    private TunnelStatus _status = new(TunnelPhase.Connecting);
    private volatile bool _peerRefused;
    private volatile bool _peerAccepted;
    // When the link last brought a byte (Environment.TickCount64): a session that fails with a PROTOCOL_ERROR after a
    // silence failed for its unanswered keep-alive ping, which the HTTP client reports so (see PingUnanswered).
    private long _lastReceived;
    private readonly Telemetry.TunnelMetrics? _metrics;

    /// <summary>A session to the server end of <paramref name="options"/>; its link's bytes counted in <paramref name="metrics"/> when given.</summary>
    public TunnelSession(TunnelOptions options, TunnelCredentials credentials, ILogger logger, Telemetry.TunnelMetrics? metrics = null)
    {
        _options = options;
        _logger = logger;
        _metrics = metrics;
        var target = options.ConnectAddress ?? throw new ArgumentException("general.connectAddress is required in client mode", nameof(options));
        _server = target.ToString();
        _nodeId = credentials.NodeId.ToString();
        Origin = $"https://{target}";
        _handler = new SocketsHttpHandler
        {
            // One connection, pre-established and kept: requests never wait for a handshake.
            EnableMultipleHttp2Connections = false,
            PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            KeepAlivePingDelay = options.KeepAliveInterval,
            KeepAlivePingTimeout = options.MaxIdleTimeout,
            KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
            InitialHttp2StreamWindowSize = options.StreamReceiveWindow,
            ConnectTimeout = options.MaxIdleTimeout,
            AllowAutoRedirect = false,
            UseCookies = false,
            UseProxy = false,
            AutomaticDecompression = DecompressionMethods.None,
            ActivityHeadersPropagator = null,
            MaxResponseHeadersLength = TunnelHeaders.MaxAnswerHeadBytes / 1024,
            RequestHeaderEncodingSelector = (_, _) => TunnelHeaders.FieldEncoding,
            ResponseHeaderEncodingSelector = (_, _) => TunnelHeaders.FieldEncoding,
            SslOptions = new SslClientAuthenticationOptions
            {
                TargetHost = options.PeerHostname ?? target.Host,
                EnabledSslProtocols = SslProtocols.Tls13,
                // Offline: this end's own certificate is sent alone, and what it points to (its issuer's URL) is never fetched.
                ClientCertificateContext = SslStreamCertificateContext.Create(credentials.Certificate, additionalCertificates: null, offline: true),
                CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
                RemoteCertificateValidationCallback = (_, certificate, _, _) =>
                {
                    if (credentials.Verifier.Verify(certificate))
                    {
                        _peerAccepted = true;
                        return true;
                    }
                    _peerRefused = true;
                    TunnelLog.PeerRefusedRationed(logger, PeerVerifier.Describe(certificate), credentials.Verifier.Expected);
                    return false;
                },
            },
            ConnectCallback = ConnectAsync,
        };
        Invoker = new HttpMessageInvoker(_handler, disposeHandler: false);
    }

    /// <summary>Where requests go: <c>https://host:port</c> of the server end.</summary>
    public string Origin { get; }

    /// <summary>Sends requests over the session's connection.</summary>
    public HttpMessageInvoker Invoker { get; }

    /// <summary>The state now.</summary>
    public TunnelStatus Status => Volatile.Read(ref _status);

    /// <summary>Completes when the first connection attempt has ended, whether it succeeded or not.</summary>
    public Task FirstAttempt => _firstAttempt.Task;

    /// <summary>
    /// Raised on every change of <see cref="Status"/> (from the session's loop, or from <see cref="DisposeAsync"/>), one
    /// at a time and in the order of the changes; <see cref="TunnelPhase.Stopped"/> is the last. A subscriber that throws
    /// stops neither the others nor later changes: its exception is logged, once per session, and dropped.
    /// </summary>
    public event Action<TunnelStatus>? StatusChanged;

    /// <summary>Starts the connect-and-watch loop.</summary>
    public void Start() => _loop = Task.Run(() => RunAsync(_stop.Token));

    /// <summary>The HTTP version requests use over the link.</summary>
    public Version Version => _options.Protocol == TunnelProtocol.Http3 ? HttpVersion.Version30 : HttpVersion.Version20;

    public async ValueTask DisposeAsync()
    {
        SetStatus(new TunnelStatus(TunnelPhase.Stopped));
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        Invoker.Dispose();
        _handler.Dispose();
        _stop.Dispose();
    }

    private async Task RunAsync(CancellationToken stop)
    {
        var interval = Configuration.Duration.Format(_options.ConnectInterval);
        while (!stop.IsCancellationRequested)
        {
            var started = Environment.TickCount64;
            var failure = await HoldOneSessionAsync(stop).ConfigureAwait(false);
            if (stop.IsCancellationRequested)
            {
                break;
            }
            // Lost after a while up: try again at once. A failed attempt, or a session that ended as soon as it
            // began, waits connectInterval first, so the loop never spins.
            var status = Status;
            var retryNow = status.Phase == TunnelPhase.Up && Environment.TickCount64 - started >= _options.ConnectInterval.TotalMilliseconds;
            var changed = status.Phase != TunnelPhase.Down || status.ErrorType != failure.ErrorType || status.Details != failure.Details;
            // Status first, then the line: whoever reads "tunnel down" must find requests already answered 503.
            if (SetStatus(new TunnelStatus(TunnelPhase.Down, failure.ErrorType, failure.Details)) && changed)
            {
                TunnelLog.SessionDownRationed(_logger, failure.ErrorType, failure.Details, interval);
            }
            // Only now, with the outcome the status: whoever waited for the first attempt (READY=1 and its STATUS=) read
            // "tunnel connecting" when it ran ahead of the change to down.
            _firstAttempt.TrySetResult();
            if (!retryNow)
            {
                try
                {
                    await Task.Delay(_options.ConnectInterval, stop).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        _firstAttempt.TrySetResult();
    }

    /// <summary>One attempt: connect and open the session request; while it is open, the tunnel is up. Returns why it ended.</summary>
    private async Task<TunnelFailure> HoldOneSessionAsync(CancellationToken stop)
    {
        _peerRefused = false;
        _peerAccepted = false;
        var answered = false;
        using var attempt = CancellationTokenSource.CreateLinkedTokenSource(stop);
        attempt.CancelAfter(_options.MaxIdleTimeout);
        using var request = new HttpRequestMessage(HttpMethod.Get, Origin + "/")
        {
            Version = Version,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.TryAddWithoutValidation(TunnelHeaders.Session, "1");
        try
        {
            using var response = await Invoker.SendAsync(request, attempt.Token).ConfigureAwait(false);
            answered = true;
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                return new TunnelFailure("destination_unavailable", "the server end is stopping");
            }
            if (response.StatusCode != HttpStatusCode.OK)
            {
                // RFC 9209 registers no error type for an unexpected status: http_protocol_error (§2.3.28) is its word for
                // a next hop that did not speak as expected where no more specific type fits.
                return new TunnelFailure("http_protocol_error", $"the server end answered the session request with {(int)response.StatusCode}; is it a passage tunnel server?");
            }
            var body = await response.Content.ReadAsStreamAsync(attempt.Token).ConfigureAwait(false);
            // Established: from here only the PINGs (maxIdleTimeout) and the socket decide.
            attempt.CancelAfter(Timeout.InfiniteTimeSpan);
            if (SetStatus(new TunnelStatus(TunnelPhase.Up)))
            {
                TunnelLog.SessionUp(_logger, _server);
            }
            _firstAttempt.TrySetResult();
            var buffer = new byte[16];
            while (await body.ReadAsync(buffer, stop).ConfigureAwait(false) > 0)
            {
                // The server sends nothing on the session request; whatever comes is ignored.
            }
            return new TunnelFailure("connection_terminated", "the server end closed the session (stopping?)");
        }
        catch (Exception e) when (BodyCopier.IsIoFailure(e) || e is AuthenticationException or SocketException)
        {
            if (stop.IsCancellationRequested)
            {
                return new TunnelFailure("proxy_internal_response", "stopping");
            }
            if (attempt.IsCancellationRequested && !_peerRefused)
            {
                return new TunnelFailure("connection_timeout", $"no session within maxIdleTimeout ({Configuration.Duration.Format(_options.MaxIdleTimeout)})");
            }
            if (_peerAccepted && !answered)
            {
                return new TunnelFailure("connection_terminated", $"the server end closed the connection after the TLS handshake, before answering (as it does when it refuses this end's certificate, node ID {_nodeId})");
            }
            if (answered && PingUnanswered(e))
            {
                return PingTimeout;
            }
            return TunnelFailure.From(e, _peerRefused);
        }
    }

    /// <summary>The session's keep-alive ping went unanswered: why the session went down, and why the requests on it failed.</summary>
    private TunnelFailure PingTimeout =>
        new("connection_timeout", $"the server end answered no keep-alive ping within maxIdleTimeout ({Configuration.Duration.Format(_options.MaxIdleTimeout)})");

    /// <summary>
    /// The failure a request sent over the session met, when <paramref name="failure"/> is the HTTP client giving up on the
    /// session's keep-alive ping (it fails the requests in flight with its own PROTOCOL_ERROR, as it does the session); else null.
    /// </summary>
    public TunnelFailure? LinkFailure(Exception failure) => PingUnanswered(failure) ? PingTimeout : null;

    /// <summary>
    /// Whether <paramref name="failure"/> is the HTTP client giving up on its keep-alive ping: a PROTOCOL_ERROR of its own
    /// (a peer's GOAWAY or reset with that code is bytes just received) after a silence. The ping's maxIdleTimeout runs from
    /// its sending, and what the peer sent before it stopped (its own ping, a window update) may come after that: the
    /// silence is maxIdleTimeout less the round trip and both ends' delays, which on a loaded machine may be most of a
    /// second, so half of maxIdleTimeout is asked for.
    /// </summary>
    private bool PingUnanswered(Exception failure)
    {
        for (var e = failure; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException { ErrorCode: 0x1 })
            {
                return Environment.TickCount64 - Volatile.Read(ref _lastReceived) >= (long)_options.MaxIdleTimeout.TotalMilliseconds / 2;
            }
        }
        return false;
    }

    private async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            TcpTuning.Apply(socket, _options);
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken).ConfigureAwait(false);
            // The clock is not set here: the next attempt, which a frozen server end's kernel accepts at once, would make a
            // request still failing on the connection before it look as if it had just heard from the server end.
            Stream link = new ReceiveClock(new NetworkStream(socket, ownsSocket: true), this);
            return _metrics is null ? link : _metrics.Count(link);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Moves to <paramref name="status"/>, unless the session is stopped: <see cref="TunnelPhase.Stopped"/> is final, though
    /// an attempt may end (up or down) on the loop just after <see cref="DisposeAsync"/> has set it. False when refused.
    /// </summary>
    /// <remarks>
    /// The change and its place in the queue of events are one step under <see cref="_statusLock"/>, so subscribers see
    /// the changes in the order they were made, <see cref="TunnelPhase.Stopped"/> last. Events are raised outside the
    /// lock, by one thread at a time: whichever found none being raised raises those queued, its own and any queued
    /// meanwhile by others, who return at once (a subscriber that waits on the session cannot hold up its loop).
    /// </remarks>
    private bool SetStatus(TunnelStatus status)
    {
        lock (_statusLock)
        {
            var previous = _status;
            if (previous.Phase == TunnelPhase.Stopped)
            {
                return false;
            }
            Volatile.Write(ref _status, status);
            if (previous == status)
            {
                return true;
            }
            _events.Enqueue(status);
            if (_raising)
            {
                return true;
            }
            _raising = true;
        }
        RaiseQueued();
        return true;
    }

    /// <summary>
    /// Raises <see cref="StatusChanged"/> for each queued change, in order, until none is left. Each subscriber is called on
    /// its own: one that throws is logged (the first time) and the others, and the changes after, are raised all the same,
    /// so that <see cref="TunnelPhase.Stopped"/> is never left in the queue.
    /// </summary>
    private void RaiseQueued()
    {
        while (true)
        {
            TunnelStatus? next;
            lock (_statusLock)
            {
                if (!_events.TryDequeue(out next))
                {
                    _raising = false;
                    return;
                }
            }
            if (StatusChanged is not { } subscribers)
            {
                continue;
            }
            foreach (var subscriber in subscribers.GetInvocationList())
            {
                try
                {
                    ((Action<TunnelStatus>)subscriber)(next);
                }
                catch (Exception e)
                {
                    if (!Interlocked.Exchange(ref _subscriberFailed, true))
                    {
                        TunnelLog.StatusSubscriberFailed(_logger, $"{e.GetType().Name}: {e.Message}");
                    }
                }
            }
        }
    }

    /// <summary>The link's socket stream, noting in <see cref="_lastReceived"/> when each read brings bytes.</summary>
    private sealed class ReceiveClock(Stream inner, TunnelSession owner) : Transport.DelegatingStream(inner)
    {
        public override int Read(byte[] buffer, int offset, int count) => Noted(Inner.Read(buffer, offset, count));

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = Inner.ReadAsync(buffer, cancellationToken);
            return read.IsCompletedSuccessfully ? new(Noted(read.Result)) : NotedAsync(read);
        }

        private async ValueTask<int> NotedAsync(ValueTask<int> read) => Noted(await read.ConfigureAwait(false));

        private int Noted(int count)
        {
            if (count > 0)
            {
                Volatile.Write(ref owner._lastReceived, Environment.TickCount64);
            }
            return count;
        }
    }
}
