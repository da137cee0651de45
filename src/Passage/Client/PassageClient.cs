using System.Diagnostics;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Telemetry;

namespace Passage.Client;

/// <summary>
/// Opens TCP connections through Passage relays: the relay sees the client's address but not what
/// it says (the application runs its own TLS inside), the destination sees the relay.
/// </summary>
/// <remarks>
/// <para>Each relay is pinned by node ID and reached over one persistent HTTP/2 connection, opened
/// at <see cref="StartAsync"/> and kept alive with pings. New tunnels go to the healthy relay with
/// the lowest average round trip (from probes and tunnel setups), in the configured order while
/// nothing is measured. A relay that fails is marked down and probed with backoff; a tunnel whose
/// setup fails at a relay is retried on the next one (no byte has reached the application then), and so is one a relay
/// refuses with 407, that relay staying up. A relay that answers 200 and then breaks the tunnel before its first byte
/// is marked down too (the application gets the error on its stream).</para>
/// <para>Destination names are passed to the relay unresolved: the client never looks them up.</para>
/// <code>
/// await using var client = new PassageClient(new PassageClientOptions { Relays = [PeerAddress.Parse("ID@relay.example:8443")] });
/// await client.StartAsync();
/// using var http = new HttpClient(client.CreateHttpHandler());
/// var page = await http.GetStringAsync("https://example.org/");
/// </code>
/// </remarks>
public sealed partial class PassageClient : IAsyncDisposable
{
    /// <summary>
    /// How long after a relay's 200 a tunnel broken before its first byte is the relay's failure: a relay that answers
    /// and then resets every tunnel does so at once; a tunnel waiting longer for its destination's first byte may end
    /// for other reasons (the relay's idle timeout, its restart).
    /// </summary>
    private static readonly TimeSpan BrokenTunnelWindow = TimeSpan.FromSeconds(10);

    private readonly PassageClientOptions _options;
    private readonly (RelayLink Link, RelayHealth Health)[] _relays;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    // Cancelled when the client is disposed. Not disposed, so that a start the disposing overtook still gets its token:
    // the probe loop it starts ends at once.
    private readonly CancellationTokenSource _stop = new();
    private Task? _prober;
    private int _disposed;

    /// <summary>Creates a client; call <see cref="StartAsync"/> to open the relay connections.</summary>
    public PassageClient(PassageClientOptions options, ILoggerFactory? loggerFactory = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Relays.Count == 0)
        {
            throw new ArgumentException("at least one relay (ID@host:port) is needed", nameof(options));
        }
        if (options.Token is { } token && !Relay.Auth.ProxyCredentials.IsBearerToken(token))
        {
            throw new ArgumentException($"Token: {PassageClientOptions.TokenProblem}", nameof(options));
        }
        _options = options;
        _time = timeProvider ?? TimeProvider.System;
        _logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<PassageClient>();
        // Built once, offline (the certificate's chain is never fetched), for every connection to every relay.
        var certificate = options.Identity is { } identity
            ? SslStreamCertificateContext.Create(identity.Certificate, additionalCertificates: null, offline: true)
            : null;
        _relays = options.Relays.Select((relay, i) => (new RelayLink(relay, options.Token, certificate, options.ConnectTimeout, options.AnswerTimeout), new RelayHealth(i))).ToArray();
        Metrics = new ClientMetrics(() => RelayStates);
    }

    /// <summary>
    /// This client's counters (meter <c>Passage.Client</c>): tunnels opened and failed, its relays by state, and the
    /// connections of the <see cref="LocalProxy"/> serving it.
    /// </summary>
    public ClientMetrics Metrics { get; }

    /// <summary>How many relays are up, refusing this client's credentials lately, or down, now.</summary>
    public RelayStates RelayStates
    {
        get
        {
            int up = 0, refusing = 0, down = 0;
            foreach (var (_, health) in _relays)
            {
                if (!health.IsUp)
                {
                    down++;
                }
                else if (health.IsRefusing(_time))
                {
                    refusing++;
                }
                else
                {
                    up++;
                }
            }
            return new RelayStates(up, refusing, down);
        }
    }

    /// <summary>
    /// Opens the connection to every relay and measures it; then keeps measuring in the background. Throws
    /// <see cref="ObjectDisposedException"/> when the client is disposed before; a disposing that comes while it measures
    /// ends it quietly.
    /// </summary>
    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        await Task.WhenAll(_relays.Select(r => ProbeAsync(r.Link, r.Health, cancellationToken))).ConfigureAwait(false);
        _prober ??= ProbeLoopAsync(_stop.Token);
    }

    /// <summary>The relays in the order new tunnels would try them now, with what is known of each.</summary>
    public IReadOnlyList<(string Relay, bool IsUp, double? RttMilliseconds)> Status =>
        Ranked().Select(r => (r.Link.Relay.ToString(), r.Health.IsUp, r.Health.RttMilliseconds)).ToArray();

    /// <summary>
    /// Opens a tunnel to <paramref name="host"/>:<paramref name="port"/> through the best relay,
    /// failing over to the next one when a relay fails. Throws <see cref="PassageTunnelException"/>
    /// when no tunnel could be opened; its <see cref="PassageTunnelException.Failure"/> says why, and
    /// <see cref="ObjectDisposedException"/> when the client is disposed before (or while waiting for a relay's answer).
    /// Cancelled by <paramref name="cancellationToken"/>, it throws an <see cref="OperationCanceledException"/> that names that
    /// token, at any stage (a request on its way is reset: the relay closes what it opened for it); the token is not the
    /// tunnel's once it is returned.
    /// </summary>
    /// <returns>
    /// The tunnel: every write is flushed; it takes one read and one write at a time (a read beside a write is fine, a
    /// second read or write while one is under way is refused with a <see cref="NotSupportedException"/>). A read
    /// cancelled by its token leaves the tunnel as it was. A write given a token cancelled already is refused without
    /// effect; one cancelled while it waits for the relay's flow-control window ends the tunnel's sending (the HTTP/2 client
    /// sends nothing more on its stream), and the writes after fail with an <see cref="IOException"/>. Disposed, it
    /// throws <see cref="ObjectDisposedException"/>; broken by the relay or the client's disposing, an
    /// <see cref="IOException"/>.
    /// </returns>
    public async ValueTask<Stream> ConnectAsync(string host, int port, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        ArgumentException.ThrowIfNullOrEmpty(host);
        ArgumentOutOfRangeException.ThrowIfLessThan(port, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, 65535);
        if (AsRelaysRead(host, port) is null)
        {
            // Refused as any relay would refuse it, without asking one: never written into an HTTP/1.1 CONNECT head, where
            // a line break in it would end the head early and send what follows (the bearer token among it) as the tunnel's
            // bytes. The host is not in the message: it may hold anything. The details say why, not the failure's "the relay
            // found the request malformed": no relay was asked.
            Metrics.TunnelFailed(TunnelFailure.InvalidRequest);
            throw new PassageTunnelException(TunnelFailure.InvalidRequest, $"no tunnel to port {port}: {NotARelayHost}", details: NotARelayHost);
        }
        TunnelAttempt last = TunnelAttempt.Failed(TunnelFailure.RelayUnavailable, "no relay");
        foreach (var (link, health) in Ranked())
        {
            var started = Stopwatch.GetTimestamp();
            // When the relay's 200 came, and how often it had failed by then (set before the stream is handed out, read only
            // if the tunnel breaks).
            var answered = 0L;
            var failures = 0;
            // How often the relay had failed when this attempt began: a failure that another attempt has counted since is
            // the same one (tunnels opened together, failed together), not one more.
            var failedBefore = health.Failures;
            TunnelAttempt attempt;
            try
            {
                attempt = await link.OpenAsync(host, port, () => BrokeTunnel(link, health, answered, failures), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException e) when (cancellationToken.IsCancellationRequested && e.CancellationToken != cancellationToken)
            {
                // The HTTP client names the token it was given, one of the link's own linked to the caller's: the caller's
                // is the one an application tells its own cancelling by (as HttpClient's callers do).
                throw new OperationCanceledException(e.Message, e, cancellationToken);
            }
            if (attempt.Stream is { } stream)
            {
                answered = _time.GetTimestamp();
                health.Served(Stopwatch.GetElapsedTime(started));
                failures = health.Failures;
                Metrics.TunnelOpened();
                return stream;
            }
            if (attempt.Failure.TellsMoreThan(last.Failure))
            {
                last = attempt;
            }
            if (!attempt.Failure.TriesAnotherRelay())
            {
                // The destination's answer, not the relay's: another relay would say the same.
                health.Served(null);
                break;
            }
            if (attempt.Failure.IsRelayFault())
            {
                var wasUp = health.IsUp;
                var takenDown = health.FailedUnlessSince(failedBefore, _time);
                if (takenDown)
                {
                    link.Reset();
                }
                Log.RelayFailed(_logger, attempt, link.Relay.ToString());
                if (takenDown && wasUp)
                {
                    // As when a probe finds it down: the "is up" that a probe will say later has a line to follow.
                    Log.RelayDown(_logger, link.Relay.ToString());
                }
            }
            else
            {
                // A 407: the relay works, it refuses this client; another relay may not. It goes behind the relays that
                // have not refused, so that each tunnel does not ask it first again (and its warning is said once).
                health.Succeeded(null);
                if (health.Refused(_time))
                {
                    Log.RelayFailed(_logger, attempt, link.Relay.ToString());
                }
                else
                {
                    Log.RelayFailedDetail(_logger, link.Relay.ToString(), attempt.Detail);
                }
            }
        }
        Metrics.TunnelFailed(last.Failure);
        throw new PassageTunnelException(last.Failure, $"no tunnel to {host}:{port}: {last.Failure} ({last.Detail})", details: last.RelayDetails);
    }

    /// <summary>Why a host no relay takes gets no tunnel (<see cref="PassageTunnelException.Details"/>): no relay was asked.</summary>
    internal const string NotARelayHost = "the host is not one a relay takes";

    /// <summary>
    /// <paramref name="host"/> as a relay reads a tunnel's target (from the extended CONNECT's path, <see cref="MasqueTcpPath"/>,
    /// as the HTTP/1.1 door reads its request target): an IPv6 literal without its brackets; null when a relay would refuse it
    /// as malformed (a byte no host holds, an IPv6 zone, ...) or, by its host syntax (<see cref="HostSyntax"/>), as no host
    /// name (an empty label, an IPv4 literal out of range): a 400 either way.
    /// </summary>
    internal static string? AsRelaysRead(string host, int port) =>
        MasqueTcpPath.TryParsePath(MasqueTcpPath.PathFor(host, port), out var read, out _, out _)
        && HostSyntax.Parse(read, out _) != HostKind.Invalid
            ? read
            : null;

    /// <summary>
    /// A handler for <see cref="HttpClient"/> whose every connection is a tunnel through Passage; TLS
    /// to the destination runs inside the tunnel, end to end.
    /// </summary>
    public SocketsHttpHandler CreateHttpHandler() => new()
    {
        UseProxy = false,
        ConnectCallback = async (context, cancellationToken) =>
            await ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false),
    };

    private IEnumerable<(RelayLink Link, RelayHealth Health)> Ranked() =>
        _relays
            .OrderBy(r => !r.Health.IsUp ? 2 : r.Health.IsRefusing(_time) ? 1 : 0)
            .ThenBy(r => r.Health.RttMilliseconds ?? double.MaxValue)
            .ThenBy(r => r.Health.Order)
            .ToArray();

    private async Task ProbeLoopAsync(CancellationToken cancellationToken)
    {
        // The start has just measured every relay: the interval runs from then (from 0, the clock's zero, its first pass
        // took every healthy relay for due and measured it again at once).
        var lastProbe = new long[_relays.Length];
        Array.Fill(lastProbe, _time.GetTimestamp());
        try
        {
            while (true)
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100), _time, cancellationToken).ConfigureAwait(false);
                var now = _time.GetTimestamp();
                for (var i = 0; i < _relays.Length; i++)
                {
                    var (link, health) = _relays[i];
                    var due = health.IsUp
                        ? _time.GetElapsedTime(lastProbe[i]) >= _options.ProbeInterval
                        : now >= health.NextProbe;
                    if (due)
                    {
                        lastProbe[i] = now;
                        await ProbeAsync(link, health, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task ProbeAsync(RelayLink link, RelayHealth health, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.ConnectTimeout);
        TimeSpan? rtt;
        try
        {
            rtt = await link.ProbeAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            rtt = null;
        }
        catch (ObjectDisposedException) when (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }
        if (Volatile.Read(ref _disposed) != 0)
        {
            // The client's disposing ended the probe (closed its connection): it tells nothing of the relay.
            return;
        }
        if (rtt is { } measured)
        {
            var wasDown = !health.IsUp;
            health.Succeeded(measured);
            if (wasDown)
            {
                Log.RelayUp(_logger, link.Relay.ToString());
            }
        }
        else if (health.IsUp || health.NextProbe <= _time.GetTimestamp())
        {
            var wasUp = health.IsUp;
            Failed(link, health);
            if (wasUp)
            {
                Log.RelayDown(_logger, link.Relay.ToString());
            }
        }
    }

    /// <summary>
    /// A relay that answered 200 and then broke the tunnel before its first byte (reset the stream, dropped the
    /// connection), within <see cref="BrokenTunnelWindow"/> of its 200 (<paramref name="answered"/>), has failed as if at
    /// the setup: the application already has its stream, so nothing is retried, but the next tunnel goes to another
    /// relay. Not counted if the relay has been taken for down since its 200 (<paramref name="failures"/>): the tunnels of
    /// one dropped connection break at once, and may be read one by one, after the relay is up again.
    /// </summary>
    private void BrokeTunnel(RelayLink link, RelayHealth health, long answered, int failures)
    {
        // A tunnel that the client's disposing ended was not broken by the relay.
        if (Volatile.Read(ref _disposed) == 0 && _time.GetElapsedTime(answered) <= BrokenTunnelWindow && health.FailedIfNoneSince(failures, _time))
        {
            link.Reset();
            Log.RelayBrokeTunnel(_logger, link.Relay.ToString());
            Log.RelayDown(_logger, link.Relay.ToString());
        }
    }

    /// <summary>A relay that failed is marked down and its connections dropped: the next attempt starts afresh.</summary>
    private void Failed(RelayLink link, RelayHealth health)
    {
        health.Failed(_time);
        link.Reset();
    }

    /// <summary>
    /// Stops the probes and closes every connection to a relay that the client opened, those dropped after a failure and
    /// still used too: the tunnels they carry end (their reads and writes fail with an <see cref="IOException"/>), HTTP/1.1
    /// ones (a connection each) too, and the tunnel requests still waiting for an answer throw
    /// <see cref="ObjectDisposedException"/>.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_prober is not null)
        {
            await _prober.ConfigureAwait(false);
        }
        foreach (var (link, _) in _relays)
        {
            link.Dispose();
        }
        Metrics.Dispose();
    }
}
