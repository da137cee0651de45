using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// The server end: listens with mutual TLS 1.3 (accepting only the expected peer: pinned, or issued by the CA for
/// <c>peerHostname</c>), serves HTTP/2 with Kestrel,
/// and sends each request to the backend (<c>general.httpConnectAddress</c>) over plain HTTP/1.1.
/// </summary>
/// <remarks>
/// <code>
///  client end ══ TLS 1.3, HTTP/2 ══► Kestrel ──► handler ──HTTP/1.1──► backend
///                                    (peer check     ├─ session request: answered here, held open
///                                     in handshake)  ├─ extended CONNECT (:protocol): Upgrade to the backend, then bytes
///                                                    ├─ body with trailers: own HTTP/1.1 framing, one connection
///                                                    └─ anything else: forwarded, bodies streamed (pooled client)
/// </code>
/// Kestrel's own TLS does the handshake; its certificate callback applies <see cref="PeerVerifier"/>, so any
/// other peer never gets to send a request. Socket options are set on the listening socket, whose accepted sockets
/// inherit them (Linux).
/// </remarks>
public sealed class TunnelServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly BackendInvokers _backends;
    private readonly TunnelCredentials _credentials;
    private readonly ILogger _logger;
    private readonly TimeSpan _drainTimeout;

    private TunnelServer(WebApplication app, BackendInvokers backends, TunnelCredentials credentials, ILogger logger, TimeSpan drainTimeout, IPEndPoint endpoint, TunnelMetrics metrics)
    {
        Metrics = metrics;
        _app = app;
        _backends = backends;
        _credentials = credentials;
        _logger = logger;
        _drainTimeout = drainTimeout;
        LocalEndpoint = endpoint;
    }

    /// <summary>Where the tunnel listens (the port the OS chose when 0 was asked for).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>This end's counters (meter <c>Passage.Tunnel</c>): the client ends' sessions, requests, the link's bytes.</summary>
    public TunnelMetrics Metrics { get; }

    /// <summary>This end's node ID.</summary>
    public NodeId NodeId => _credentials.NodeId;

    /// <summary>
    /// Loads the credentials, binds the listener and starts serving.
    /// Its name in Via is drawn at random.
    /// </summary>
    /// <exception cref="IOException">The listener cannot bind, or a key file cannot be read.</exception>
    /// <exception cref="InvalidDataException">A key or certificate file is unusable.</exception>
    public static Task<TunnelServer> StartAsync(TunnelOptions options, ILoggerFactory loggerFactory) => StartAsync(options, loggerFactory, viaPseudonym: null);

    /// <summary>As <see cref="StartAsync(TunnelOptions, ILoggerFactory)"/>, the end named <paramref name="viaPseudonym"/> in Via when given (a test's choice).</summary>
    internal static async Task<TunnelServer> StartAsync(TunnelOptions options, ILoggerFactory loggerFactory, string? viaPseudonym)
    {
        ArgumentNullException.ThrowIfNull(options);
        var backendAddress = options.HttpConnectAddress ?? throw new ArgumentException("general.httpConnectAddress is required in server mode", nameof(options));
        var logger = loggerFactory.CreateLogger("Passage.Tunnel");
        var credentials = TunnelCredentials.Load(options);
        TunnelLog.Identity(logger, credentials.NodeId.ToString(), credentials.Created ? $" (new identity written to {options.KeyFile})" : "", credentials.Verifier.Expected);
        // Connections (a peer's, or anyone's before the handshake) and backend connections share what the open-file
        // limit leaves for traffic, half each: out of descriptors the process would abort.
        var connections = new BackendConnections(options.BackendConnectionLimit ?? OpenFileLimit.ConnectionsThatFit(2));
        var backends = new BackendInvokers(CreateBackendInvoker(options, connections), new HttpMessageInvoker(new ChunkedRequestHandler(options.MaxIdleTimeout, options.TcpNoDelay, connections)));
        var metrics = new TunnelMetrics();
        var builder = KestrelHost.CreateBuilder("tunnel server end", loggerFactory);
        // Requests in flight get the whole system.drainTimeout at a stop, not the host's 30 s.
        KestrelHost.StopOnlyByGrace(builder);
        builder.WebHost.UseSockets(sockets =>
        {
            sockets.NoDelay = options.TcpNoDelay;
            sockets.CreateBoundListenSocket = endpoint =>
            {
                var socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
                TcpTuning.Apply(socket, options);
                return socket;
            };
        });
        if (options.Protocol == TunnelProtocol.Http3)
        {
            // Kestrel serves HTTP/3 only with the QUIC transport registered (settings allow h3 only
            // where the runtime has QUIC; not testable on machines without libmsquic).
            builder.WebHost.UseQuic();
        }
        bool AcceptPeer(System.Security.Cryptography.X509Certificates.X509Certificate certificate)
        {
            if (credentials.Verifier.Verify(certificate))
            {
                return true;
            }
            TunnelLog.PeerRefusedRationed(logger, PeerVerifier.Describe(certificate), credentials.Verifier.Expected);
            return false;
        }
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.RequestHeaderEncodingSelector = _ => TunnelHeaders.FieldEncoding;
            kestrel.ResponseHeaderEncodingSelector = _ => TunnelHeaders.FieldEncoding;
            // Bodies of any size and pace: the peer's flow control is the only brake.
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromDays(1);
            // Every head the client end's HTTP/1.1 server takes (Kestrel's defaults there: 32 KiB of fields, 100 of them)
            // must fit here, where HTTP/2 counts 32 bytes more for each field (RFC 9113 §6.5.2) and the client end has added
            // fields of its own: twice those bounds. Under Kestrel's own, one that fitted there was refused here, by the
            // client end's HTTP client (502) or by a 431 of this Kestrel's that passed for the backend's answer.
            var atTheClientEnd = new KestrelServerLimits();
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * atTheClientEnd.MaxRequestHeadersTotalSize;
            kestrel.Limits.MaxRequestHeaderCount = 2 * atTheClientEnd.MaxRequestHeaderCount;
            // This end's half of what the open-file limit leaves for traffic (see the backend's above). One more is closed at once.
            kestrel.Limits.MaxConcurrentConnections = OpenFileLimit.ConnectionsThatFit(2);
            // The client end's session request holds one stream for as long as the session lasts: one more than the requests
            // in flight, or at 1 every request would wait for a stream that never frees (and N would carry N - 1).
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxConcurrentHttpStreams + 1;
            kestrel.Limits.Http2.InitialStreamWindowSize = options.StreamReceiveWindow;
            kestrel.Limits.Http2.InitialConnectionWindowSize = options.ReceiveWindow;
            // RFC 9113 §6.7: PING after this much silence; no answer within maxIdleTimeout closes the connection.
            kestrel.Limits.Http2.KeepAlivePingDelay = options.KeepAliveInterval;
            kestrel.Limits.Http2.KeepAlivePingTimeout = options.MaxIdleTimeout;
            kestrel.Listen(options.BindAddress, listen =>
            {
                if (options.Protocol != TunnelProtocol.Http3)
                {
                    // Below TLS: the link's bytes as they cross the socket. (QUIC connections do not pass here.)
                    listen.Use(next => connection =>
                    {
                        connection.Transport = metrics.Count(connection.Transport);
                        return next(connection);
                    });
                }
                listen.Protocols = options.Protocol == TunnelProtocol.Http3 ? HttpProtocols.Http3 : HttpProtocols.Http2;
                if (options.Protocol == TunnelProtocol.Http3)
                {
                    listen.UseHttps(new HttpsConnectionAdapterOptions
                    {
                        ServerCertificate = credentials.Certificate,
                        SslProtocols = SslProtocols.Tls13,
                        ClientCertificateMode = ClientCertificateMode.RequireCertificate,
                        OnAuthenticate = (_, tls) => tls.CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
                        ClientCertificateValidation = (certificate, _, _) => AcceptPeer(certificate),
                        HandshakeTimeout = options.MaxIdleTimeout,
                    });
                    return;
                }
                // This end's certificate context is made here, offline: Kestrel's own (from ServerCertificate) builds the
                // certificate's chain as it starts, fetching the issuer from the URL the certificate names, and holding the
                // start until that answers or gives up. (HTTP/3 above keeps Kestrel's: untested, as QUIC is missing here.)
                var certificateContext = SslStreamCertificateContext.Create(credentials.Certificate, additionalCertificates: null, offline: true);
                listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions
                    {
                        ServerCertificateContext = certificateContext,
                        EnabledSslProtocols = SslProtocols.Tls13,
                        ApplicationProtocols = [SslApplicationProtocol.Http2],
                        ClientCertificateRequired = true,
                        CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
                        // A connection without a certificate is refused unlogged, as Kestrel's own check does.
                        RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && AcceptPeer(certificate),
                    }),
                    HandshakeTimeout = options.MaxIdleTimeout,
                });
            });
        });
        var app = builder.Build();
        var stopping = app.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        var origin = $"http://{backendAddress}";
        var hop = Intermediary.Create(serverEnd: true, logger, viaPseudonym);
        app.Run(context =>
        {
            if (context.Request.Headers.ContainsKey(TunnelHeaders.Session))
            {
                return HoldSessionAsync(context, metrics, stopping);
            }
            // A refusal of this end's is marked so on its way: the client end counts it refused, a backend's answer answered.
            context.Response.OnStarting(() =>
            {
                if (TunnelMetrics.Refusal(context) is { } error)
                {
                    context.Response.Headers[TunnelHeaders.Refused] = error;
                }
                return Task.CompletedTask;
            });
            return metrics.ServeAsync(context, c => HandleAsync(c, hop, backends, connections, origin, options, logger));
        });
        try
        {
            await TunnelHosting.StartAsync(app, "general.bindAddress", options.BindAddress).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            backends.Dispose();
            credentials.Dispose();
            metrics.Dispose();
            throw;
        }
        var bound = TunnelHosting.BoundEndpoint(app, options.BindAddress);
        TunnelLog.Listening(logger, "server", bound, $"HTTP/{(options.Protocol == TunnelProtocol.Http3 ? "3" : "2")} with mutual TLS; requests go to {backendAddress}; Via {hop.Pseudonym}");
        return new TunnelServer(app, backends, credentials, logger, options.DrainTimeout, bound, metrics);
    }

    /// <summary>
    /// Stops accepting, ends the peers' session requests (so their ends know at once) and lets requests in
    /// flight finish for <c>system.drainTimeout</c>, or until <paramref name="hurry"/> is cancelled.
    /// </summary>
    public Task StopAsync(CancellationToken hurry) => TunnelHosting.StopAsync(_app, _logger, _drainTimeout, hurry);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        _backends.Dispose();
        _credentials.Dispose();
        Metrics.Dispose();
    }

    private static async Task HandleAsync(HttpContext context, Intermediary hop, BackendInvokers backends, BackendConnections connections, string origin, TunnelOptions options, ILogger logger)
    {
        if (await hop.AnsweredHereAsync(context).ConfigureAwait(false))
        {
            return;
        }
        if (context.Features.Get<IHttpExtendedConnectFeature>() is { IsExtendedConnect: true } connect)
        {
            await UpgradeForwarder.ServeAsync(context, hop, connect, origin, options, connections, logger).ConfigureAwait(false);
            return;
        }
        using var backend = new BackendTimer(options.BackendTimeout, context.RequestAborted);
        using var message = MessageCopy.CreateRequest(context, hop, origin, HttpVersion.Version11);
        if (MessageCopy.SetBackendHost(context, message) is { } badHost)
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadRequest, badHost).ConfigureAwait(false);
            return;
        }
        if (options.AddForwarded)
        {
            MessageCopy.AddForwarded(message, context, withHost: false);
        }
        var framing = context.Request.Headers[TunnelHeaders.Framing];
        if (framing.Count > 0 && (framing != TunnelHeaders.Chunked || !MessageCopy.HasBody(context)))
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadRequest, new TunnelFailure("http_request_error", $"unknown body framing '{framing}' from the client end")).ConfigureAwait(false);
            return;
        }
        if (MessageCopy.HasBody(context))
        {
            var compressed = context.Request.Headers[TunnelHeaders.Encoding] == TunnelHeaders.Brotli;
            var body = context.Request.Body;
            if (compressed)
            {
                // Its decoder holds native memory (up to the stream's window, 4 MiB) that only its disposing or a finalizer
                // gives back; a garbage collection may be far off when the bodies are big and the managed allocations few.
                body = new System.IO.Compression.BrotliStream(body, System.IO.Compression.CompressionMode.Decompress, leaveOpen: true);
                context.Response.RegisterForDisposeAsync(body);
            }
            StreamingContent content;
            if (framing.Count > 0)
            {
                // The body and its trailers, read back from the client end's chunked framing and framed anew for the backend.
                var reader = new Http1Reader(body);
                context.Response.RegisterForDispose(reader);
                var unframed = new ChunkedReadStream(reader);
                content = new StreamingContent(unframed, compress: false, context.RequestAborted, () => unframed.Trailers, backend, options.IdleTimeout);
            }
            else
            {
                content = new StreamingContent(body, compress: false, context.RequestAborted, backend: backend, senderIdle: options.IdleTimeout);
                var length = compressed ? MessageCopy.ParseLength(context.Request.Headers[TunnelHeaders.Length]) : context.Request.ContentLength;
                if (length is { } known)
                {
                    content.Headers.ContentLength = known;
                }
            }
            MessageCopy.CopyContentFields(context.Request, content);
            message.Content = content;
        }
        else
        {
            // The pooled client sends a request without content again, on another connection, when the backend closes
            // a kept-alive one without answering it; a method that is not idempotent might then do its work twice
            // (RFC 9110 §9.2.2). Any content stops that, and these methods carry Content-Length: 0 either way.
            message.Content = MessageCopy.EmptyContent(context.Request, always: !IsIdempotent(context.Request.Method));
        }
        var compressResponse = options.Compress && context.Request.Headers[TunnelHeaders.AcceptEncoding] == TunnelHeaders.Brotli;
        // The pooled client frames bodies itself and cannot send trailers: a request that carries them goes on its own connection.
        var invoker = message.Content is StreamingContent { IsChunkFramed: true } ? backends.Chunked : backends.Pooled;
        await ExchangeForwarder.ForwardAsync(context, invoker, message, compressResponse, fromPeer: false, logger, context.RequestAborted, backend).ConfigureAwait(false);
    }

    /// <summary>RFC 9110 §9.2.2: the methods whose repetition has the effect of one request.</summary>
    private static bool IsIdempotent(string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || HttpMethods.IsOptions(method) || HttpMethods.IsTrace(method)
            || HttpMethods.IsPut(method) || HttpMethods.IsDelete(method);

    /// <summary>
    /// The client end's session request: answered at once and held open until this end stops or the peer goes; counted in
    /// <paramref name="metrics"/> as a session while it is held, once its acceptance (the 200) has gone out.
    /// </summary>
    /// <remarks>
    /// Kestrel takes writes to a stream the peer has reset, or on a connection that is gone, without an error, and says so
    /// only through <see cref="HttpContext.RequestAborted"/>: a session is counted when the flush of its 200 has ended
    /// with the request still open. That flush hands the 200 to the connection rather than to the peer, and Kestrel cancels
    /// the token on the thread pool, so a peer that leaves at that very moment may still be counted; one that left
    /// before, as the token says, is not.
    /// </remarks>
    private static async Task HoldSessionAsync(HttpContext context, TunnelMetrics metrics, CancellationToken stopping)
    {
        if (stopping.IsCancellationRequested)
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.ServiceUnavailable, new TunnelFailure("proxy_internal_response", "the server end is stopping")).ConfigureAwait(false);
            return;
        }
        var counted = false;
        try
        {
            context.Response.StatusCode = StatusCodes.Status200OK;
            await context.Response.StartAsync(context.RequestAborted).ConfigureAwait(false);
            await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
            context.RequestAborted.ThrowIfCancellationRequested();
            metrics.SessionStarted();
            counted = true;
            using var either = CancellationTokenSource.CreateLinkedTokenSource(stopping, context.RequestAborted);
            await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Stopping, or the peer went away: end the session request so its end reconnects elsewhere or later.
        }
        finally
        {
            if (counted)
            {
                metrics.SessionEnded();
            }
        }
    }

    /// <summary>The two ways to the backend: the pooled HTTP client, and one connection per request for requests with trailers.</summary>
    private sealed record BackendInvokers(HttpMessageInvoker Pooled, HttpMessageInvoker Chunked) : IDisposable
    {
        public void Dispose()
        {
            Pooled.Dispose();
            Chunked.Dispose();
        }
    }

    /// <summary>The backend client: plain HTTP/1.1, a pool of keep-alive connections, nothing added or changed.</summary>
    private static HttpMessageInvoker CreateBackendInvoker(TunnelOptions options, BackendConnections connections) => new(CreateBackendHandler(options, connections), disposeHandler: true);

    /// <summary>
    /// The backend client's handler, for the pool or for one upgrade: its connections are opened in
    /// <paramref name="connections"/>' slots, and each socket is shown to <paramref name="connected"/> when set.
    /// </summary>
    internal static SocketsHttpHandler CreateBackendHandler(TunnelOptions options, BackendConnections connections, Action<Socket>? connected = null) => new()
    {
        AllowAutoRedirect = false,
        UseCookies = false,
        UseProxy = false,
        AutomaticDecompression = DecompressionMethods.None,
        ActivityHeadersPropagator = null,
        ConnectTimeout = options.MaxIdleTimeout,
        PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
        MaxResponseHeadersLength = TunnelHeaders.MaxAnswerHeadBytes / 1024,
        RequestHeaderEncodingSelector = (_, _) => TunnelHeaders.FieldEncoding,
        ResponseHeaderEncodingSelector = (_, _) => TunnelHeaders.FieldEncoding,
        // Requests beyond the cap wait for a pooled connection; an upgrade's connections count against it too (ConnectCallback).
        MaxConnectionsPerServer = connections.Limit ?? int.MaxValue,
        ConnectCallback = async (context, cancellationToken) =>
        {
            var connection = await connections.ConnectAsync(context.DnsEndPoint, options.TcpNoDelay, cancellationToken).ConfigureAwait(false);
            connected?.Invoke(connection.Socket);
            return connection;
        },
    };
}
