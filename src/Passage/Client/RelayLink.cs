using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Authentication;
using Passage.Identity;

namespace Passage.Client;

/// <summary>
/// The client's persistent link to one relay: an HTTP/2 connection (re-opened when lost, kept alive
/// with pings) carrying one extended CONNECT stream per tunnel, the relay pinned by its node ID.
/// Falls back to HTTP/1.1 CONNECT (one TLS connection per tunnel) when the relay has no h2.
/// </summary>
internal sealed class RelayLink : IDisposable
{
    private RelayConnections _connections;
    // Cancelled when the link is disposed: every generation's connections close, and the requests waiting end. Not
    // disposed, so that a Reset after that (a tunnel's read failing) still gets a token, and a generation closed at once.
    private readonly CancellationTokenSource _closing = new();
    private readonly string? _token;
    private readonly SslStreamCertificateContext? _certificate;
    private readonly TimeSpan _connectTimeout;
    private readonly TimeSpan _answerTimeout;
    private readonly TimeSpan _setupAndAnswerTimeout;
    private volatile bool _http1Only;
    // Whether the relay has answered a request (any status) on the connections since they were last dropped.
    private bool _answered;

    /// <param name="relay">The relay, pinned by node ID.</param>
    /// <param name="token">The bearer token for a relay that requires one, or null.</param>
    /// <param name="certificate">The client's own key and certificate, for a relay that asks for one (mutual TLS), or null.</param>
    /// <param name="connectTimeout">Time to reach the relay (TCP and TLS).</param>
    /// <param name="answerTimeout">Time for the relay to answer a tunnel request.</param>
    public RelayLink(PeerAddress relay, string? token, SslStreamCertificateContext? certificate, TimeSpan connectTimeout, TimeSpan answerTimeout)
    {
        Relay = relay;
        _token = token;
        _certificate = certificate;
        _connectTimeout = connectTimeout;
        // Infinite (a library caller's choice) is no limit; a timer takes no more than Duration.Max. Over HTTP/2 the wait
        // also covers the link's setup, which the connect timeout bounds.
        _answerTimeout = ForTimer(answerTimeout);
        _setupAndAnswerTimeout = answerTimeout == Timeout.InfiniteTimeSpan ? answerTimeout : ForTimer(connectTimeout + answerTimeout);
        _connections = new RelayConnections(CreateHandler(), _closing.Token);
        BaseUri = new UriBuilder("https", relay.Host.Contains(':', StringComparison.Ordinal) ? $"[{relay.Host}]" : relay.Host, relay.Port).Uri;
    }

    /// <summary>The relay this link goes to.</summary>
    public PeerAddress Relay { get; }

    private Uri BaseUri { get; }

    private SocketsHttpHandler CreateHandler() => new()
    {
        UseProxy = false,
        UseCookies = false,
        AllowAutoRedirect = false,
        ConnectTimeout = _connectTimeout,
        // More connections only when one carries as many tunnels as the relay allows.
        EnableMultipleHttp2Connections = true,
        PooledConnectionIdleTimeout = Timeout.InfiniteTimeSpan,
        PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
        KeepAlivePingDelay = TimeSpan.FromSeconds(15),
        KeepAlivePingTimeout = TimeSpan.FromSeconds(10),
        KeepAlivePingPolicy = HttpKeepAlivePingPolicy.Always,
        InitialHttp2StreamWindowSize = 4 * 1024 * 1024,
        SslOptions = TlsOptions(Relay, _certificate),
    };

    /// <summary>
    /// The TLS options of every connection to <paramref name="relay"/>: its key pinned, nothing fetched for its chain, the
    /// client's own <paramref name="certificate"/> presented when it has one and the relay asks.
    /// </summary>
    internal static SslClientAuthenticationOptions TlsOptions(PeerAddress relay, SslStreamCertificateContext? certificate) => new()
    {
        RemoteCertificateValidationCallback = CertificatePin.CreateValidationCallback(relay.NodeId),
        CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
        ClientCertificateContext = certificate,
    };

    /// <summary>
    /// Drops the link's connections, after the relay failed: the next request opens a new one. The connections close
    /// once no tunnel they carry and no request sent on them is left, at once when none is (see <see cref="RelayConnections"/>).
    /// </summary>
    public void Reset()
    {
        Volatile.Write(ref _answered, false);
        Interlocked.Exchange(ref _connections, new RelayConnections(CreateHandler(), _closing.Token)).Dispose();
    }

    /// <summary>
    /// Sends a request made by <paramref name="create"/>, again on the new connections if <see cref="Reset"/> came between;
    /// its use of the connections (the returned lease, the caller's to dispose) counts from before it is sent.
    /// </summary>
    private async Task<(HttpResponseMessage Response, RelayConnections.Lease Use)> SendAsync(Func<HttpRequestMessage> create, CancellationToken cancellationToken)
    {
        while (true)
        {
            var connections = Volatile.Read(ref _connections);
            var use = connections.Use();
            using var request = create();
            try
            {
                var response = await connections.Http.SendAsync(request, cancellationToken).ConfigureAwait(false);
                Volatile.Write(ref _answered, true);
                return (response, use);
            }
            catch (ObjectDisposedException) when (!ReferenceEquals(connections, Volatile.Read(ref _connections)))
            {
                // Reset while this request was on its way: ask again.
                use.Dispose();
            }
            catch (Exception e) when (IsHttpClientsOwn(e))
            {
                use.Dispose();
                throw new HttpRequestException(HttpRequestError.InvalidResponse, $"the connection to the relay failed: {e.Message}", e);
            }
            catch
            {
                use.Dispose();
                throw;
            }
        }
    }

    /// <summary>
    /// True for a failure the HTTP client passes on as it came, of a type of its own that is neither an
    /// <see cref="HttpRequestException"/> nor an <see cref="IOException"/>: a request that was still to be sent, or a tunnel
    /// write under way, when the relay broke the connection gets the connection's failure itself (an HPACK decoding
    /// failure: a header block over the limit). Told by the type's assembly, the type being internal.
    /// </summary>
    internal static bool IsHttpClientsOwn(Exception e) =>
        e is not (HttpRequestException or IOException) && e.GetType().Assembly == typeof(HttpMessageInvoker).Assembly;

    /// <summary>
    /// Opens a tunnel to <paramref name="host"/>:<paramref name="port"/> through this relay. An HTTP/2 tunnel calls
    /// <paramref name="brokeBeforeFirstByte"/> if the relay breaks it before its first byte (see <see cref="TunnelStream"/>);
    /// over HTTP/1.1 a relay's breaking a tunnel cannot be told from the destination's reset.
    /// </summary>
    /// <exception cref="ObjectDisposedException">The link was disposed before the tunnel was opened.</exception>
    public async Task<TunnelAttempt> OpenAsync(string host, int port, Action brokeBeforeFirstByte, CancellationToken cancellationToken)
    {
        if (_closing.IsCancellationRequested)
        {
            throw Disposed();
        }
        if (_http1Only)
        {
            return await OpenHttp1Async(host, port, cancellationToken).ConfigureAwait(false);
        }
        HttpResponseMessage response;
        RelayConnections.Lease use;
        // The relay's answer, and the setup of a connection when none is up: the relay's own connect timeout should end
        // that wait first, and this one ends it if the relay does not. Over a connection up already, the answer timeout
        // alone (it was connect + answer whatever: 10.5 s for an answer timeout of 500 ms, said as "within 500ms"), unless
        // a setup starts while the request waits (see AnswerDeadline). Setups read first: one that starts before the
        // connections are looked at finds them not up.
        var connections = Volatile.Read(ref _connections);
        var setups = connections.Setups;
        using var answer = new AnswerDeadline(
            _answerTimeout,
            _setupAndAnswerTimeout,
            connections.HasConnection,
            // A Reset meanwhile sends the request again over new connections, set up for it.
            () => !ReferenceEquals(connections, Volatile.Read(ref _connections)) || connections.Setups != setups,
            cancellationToken,
            _closing.Token);
        try
        {
            (response, use) = await SendAsync(() => TunnelRequest(host, port), answer.Token).ConfigureAwait(false);
        }
        catch (Exception) when (_closing.IsCancellationRequested)
        {
            // Disposed while the request waited: its connection is closed, and so is the link.
            throw Disposed();
        }
        catch (OperationCanceledException) when (answer.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            return TunnelAttempt.NoAnswer(Relay, answer.Limit);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.VersionNegotiationError)
        {
            // The relay speaks HTTP/1.1 only: remember it and use CONNECT over HTTP/1.1.
            _http1Only = true;
            return await OpenHttp1Async(host, port, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            if (IsTlsFailure(e))
            {
                // A wrong key, or a relay without h2 that refused our ALPN: HTTP/1.1 tells them apart.
                var attempt = await OpenHttp1Async(host, port, cancellationToken).ConfigureAwait(false);
                if (attempt.Failure != TunnelFailure.PinMismatch || attempt.Stream is not null)
                {
                    _http1Only = attempt.Stream is not null || attempt.Failure != TunnelFailure.RelayUnavailable;
                    return attempt;
                }
            }
            return Failure(e);
        }

        use.With(response);
        var status = (int)response.StatusCode;
        if (status == 200)
        {
            try
            {
                var stream = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
                return new TunnelAttempt(new TunnelStream(stream, use, $"{Relay.Host}:{Relay.Port}", brokeBeforeFirstByte, use.ConnectionsClosed()), default, "");
            }
            catch
            {
                use.Dispose();
                throw;
            }
        }
        // Disposing the exchange resets the stream: the relay closes whatever it opened for it.
        using (use)
        {
            if (TunnelFailures.OpensTunnel(status))
            {
                // Any 2xx opens the tunnel (RFC 9220), but the .NET HTTP/2 client makes an extended CONNECT's stream
                // writable only after a 200 (it hands out a read-only one otherwise): no tunnel this client can use.
                return TunnelAttempt.Failed(TunnelFailure.RelayError, $"{status}: the relay opened the tunnel, but over HTTP/2 this client can use only a 200's");
            }
            var proxyStatus = response.Headers.TryGetValues("Proxy-Status", out var values) ? string.Join(", ", values) : null;
            return TunnelAttempt.Refused(status, proxyStatus);
        }
    }

    private HttpRequestMessage TunnelRequest(string host, int port)
    {
        var request = new HttpRequestMessage(HttpMethod.Connect, new Uri(BaseUri, Passage.Relay.Connect.MasqueTcpPath.PathFor(host, port)))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Protocol = "connect-tcp";
        if (_token is not null)
        {
            request.Headers.ProxyAuthorization = new AuthenticationHeaderValue("Bearer", _token);
        }
        return request;
    }

    /// <summary>
    /// One round trip to the relay over the link (a request it answers at once), also opening the
    /// connection when it is not open. Null when the relay could not be reached, or the link was disposed meanwhile.
    /// </summary>
    public async Task<TimeSpan?> ProbeAsync(CancellationToken cancellationToken)
    {
        // The link's disposing ends an HTTP/1.1 probe too (its connection is its own): it is null then.
        using var probing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        if (_http1Only)
        {
            return (await Http1ConnectDialer.ProbeAsync(Relay, _certificate, _connectTimeout, probing.Token).ConfigureAwait(false)).RoundTrip;
        }
        var started = Stopwatch.GetTimestamp();
        try
        {
            var (response, use) = await SendAsync(
                () => new HttpRequestMessage(HttpMethod.Head, new Uri(BaseUri, Passage.Relay.Connect.MasqueTcpPath.PingPath))
                {
                    Version = HttpVersion.Version20,
                    VersionPolicy = HttpVersionPolicy.RequestVersionExact,
                },
                probing.Token).ConfigureAwait(false);
            use.With(response).Dispose();
            return Stopwatch.GetElapsedTime(started);
        }
        catch (HttpRequestException e) when (e.HttpRequestError == HttpRequestError.VersionNegotiationError)
        {
            _http1Only = true;
            return await ProbeAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or IOException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            if (IsTlsFailure(e))
            {
                var (roundTrip, pinMismatch) = await Http1ConnectDialer.ProbeAsync(Relay, _certificate, _connectTimeout, probing.Token).ConfigureAwait(false);
                _http1Only = !pinMismatch && roundTrip is not null;
                return roundTrip;
            }
            return null;
        }
    }

    /// <summary>
    /// A tunnel over HTTP/1.1 CONNECT (<see cref="Http1ConnectDialer"/>), ended as one over HTTP/2 is when the link is
    /// disposed: while it waits, its connection closed and <see cref="ObjectDisposedException"/> thrown, no tunnel of a
    /// disposed client handed out; once open, its connection closed.
    /// </summary>
    private async Task<TunnelAttempt> OpenHttp1Async(string host, int port, CancellationToken cancellationToken)
    {
        using var closing = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _closing.Token);
        TunnelAttempt attempt;
        try
        {
            attempt = await Http1ConnectDialer.OpenAsync(Relay, _certificate, host, port, _token, _connectTimeout, _answerTimeout, _closing.Token, closing.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_closing.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw Disposed();
        }
        if (_closing.IsCancellationRequested)
        {
            if (attempt.Stream is { } stream)
            {
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            throw Disposed();
        }
        return attempt;
    }

    private static ObjectDisposedException Disposed() => new(nameof(PassageClient));

    private static TimeSpan ForTimer(TimeSpan timeout) =>
        timeout == Timeout.InfiniteTimeSpan || timeout <= Configuration.Duration.Max ? timeout : Configuration.Duration.Max;

    private static bool IsTlsFailure(Exception e)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is AuthenticationException)
            {
                return true;
            }
        }
        return false;
    }

    private TunnelAttempt Failure(Exception e) => IsTlsFailure(e)
        ? TunnelAttempt.Failed(TunnelFailure.PinMismatch, $"relay {Relay.Host}:{Relay.Port} did not present the key of {Relay.NodeId}")
        : Unavailable(e);

    private TunnelAttempt Unavailable(Exception e)
    {
        var (under, hint) = Cause(e);
        return TunnelAttempt.Failed(TunnelFailure.RelayUnavailable, $"relay {Relay.Host}:{Relay.Port}: {e.Message}{under}{(hint is null ? "" : $"; {hint}")}", hint);
    }

    /// <summary>
    /// What the HTTP client's message leaves out: the failure under it (a reset, a stream disposed under a request). And
    /// when the relay took the connection (TCP and, as far as this end can tell, TLS) but has answered nothing on the
    /// connections since they were last dropped: that a relay requiring mutual TLS ends the connection so, as it refuses a
    /// key it does not list only after the TLS 1.3 handshake is over for the client, with the key this client presents,
    /// so that its operator can be told which ID to allow.
    /// </summary>
    private (string Under, string? Hint) Cause(Exception e)
    {
        var innermost = e;
        while (innermost.InnerException is { } inner)
        {
            innermost = inner;
        }
        var under = ReferenceEquals(innermost, e) || innermost.Message == e.Message ? "" : $": {innermost.Message.ReplaceLineEndings(" ")}";
        if (Volatile.Read(ref _answered)
            || e is HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError }
            || e is OperationCanceledException)
        {
            return (under, null);
        }
        return (under, $"it took the connection and has answered nothing since: {MutualTlsHint(_certificate)}");
    }

    /// <summary>
    /// What a relay that took the connection and answered nothing may be saying: that it requires mutual TLS and does not
    /// list this client's key, which it can tell only by ending the connection once the client's side of a TLS 1.3
    /// handshake is over. Names the key this client presents (<paramref name="certificate"/>'s node ID, or none).
    /// </summary>
    internal static string MutualTlsHint(SslStreamCertificateContext? certificate) =>
        "if it requires mutual TLS (--client-id), it does not list this client's key (this client presents "
        + (certificate is null ? "no key (client.key))" : $"node ID {NodeId.FromCertificate(certificate.TargetCertificate)})");

    /// <summary>Closes every connection of the link, those tunnels and requests still use too, and ends the requests waiting.</summary>
    public void Dispose()
    {
        _closing.Cancel();
        _connections.Dispose();
    }
}
