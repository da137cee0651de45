using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// The client end: takes plain HTTP/1.1 on <c>general.httpBindAddress</c> and carries each request over the one
/// persistent session (<see cref="TunnelSession"/>) to the server end. While the session is down a request is
/// answered 503 at once, with a Proxy-Status field (RFC 9209) saying why.
/// </summary>
/// <remarks>
/// <code>
///  app ──HTTP/1.1──► Kestrel ──► handler ──┬─ session down: 503 + Proxy-Status, at once
///                                          ├─ Upgrade (WebSocket): extended CONNECT, then bytes
///                                          └─ otherwise: HTTP/2 request on the session, bodies streamed
/// </code>
/// </remarks>
public sealed class TunnelClient : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly TunnelSession _session;
    private readonly TunnelCredentials _credentials;
    private readonly ILogger _logger;
    private readonly TimeSpan _drainTimeout;

    private TunnelClient(WebApplication app, TunnelSession session, TunnelCredentials credentials, ILogger logger, TimeSpan drainTimeout, IPEndPoint endpoint, TunnelMetrics metrics)
    {
        Metrics = metrics;
        _app = app;
        _session = session;
        _credentials = credentials;
        _logger = logger;
        _drainTimeout = drainTimeout;
        LocalEndpoint = endpoint;
    }

    /// <summary>Where local HTTP/1.1 requests are taken (the port the OS chose when 0 was asked for).</summary>
    public IPEndPoint LocalEndpoint { get; }

    /// <summary>This end's counters (meter <c>Passage.Tunnel</c>): the session, requests, the link's bytes.</summary>
    public TunnelMetrics Metrics { get; }

    /// <summary>This end's node ID (what the server end puts in <c>general.peer</c>).</summary>
    public NodeId NodeId => _credentials.NodeId;

    /// <summary>The session's state now.</summary>
    public TunnelStatus Status => _session.Status;

    /// <summary>Completes when the first connection attempt has ended, whether it succeeded or not.</summary>
    public Task FirstAttempt => _session.FirstAttempt;

    /// <summary>Raised on every change of <see cref="Status"/>.</summary>
    public event Action<TunnelStatus>? StatusChanged
    {
        add => _session.StatusChanged += value;
        remove => _session.StatusChanged -= value;
    }

    /// <summary>
    /// Loads the credentials, starts the session (its first attempt at once) and the local listener.
    /// Its name in Via is drawn at random.
    /// </summary>
    /// <exception cref="IOException">The listener cannot bind, or a key file cannot be read.</exception>
    /// <exception cref="InvalidDataException">A key or certificate file is unusable.</exception>
    public static Task<TunnelClient> StartAsync(TunnelOptions options, ILoggerFactory loggerFactory) => StartAsync(options, loggerFactory, viaPseudonym: null);

    /// <summary>As <see cref="StartAsync(TunnelOptions, ILoggerFactory)"/>, the end named <paramref name="viaPseudonym"/> in Via when given (a test's choice).</summary>
    internal static async Task<TunnelClient> StartAsync(TunnelOptions options, ILoggerFactory loggerFactory, string? viaPseudonym)
    {
        ArgumentNullException.ThrowIfNull(options);
        var logger = loggerFactory.CreateLogger("Passage.Tunnel");
        var credentials = TunnelCredentials.Load(options);
        TunnelLog.Identity(logger, credentials.NodeId.ToString(), credentials.Created ? $" (new identity written to {options.KeyFile})" : "", credentials.Verifier.Expected);
        var metrics = new TunnelMetrics();
        var session = new TunnelSession(options, credentials, logger, metrics);
        // Raised one at a time, in order: an Up opens a session, the first change away from it ends that one.
        var up = false;
        session.StatusChanged += status =>
        {
            if ((status.Phase == TunnelPhase.Up) != up)
            {
                up = !up;
                if (up)
                {
                    metrics.SessionStarted();
                }
                else
                {
                    metrics.SessionEnded();
                }
            }
        };
        var builder = KestrelHost.CreateBuilder("tunnel client end", loggerFactory);
        // Requests in flight get the whole system.drainTimeout at a stop, not the host's 30 s.
        KestrelHost.StopOnlyByGrace(builder);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.RequestHeaderEncodingSelector = _ => TunnelHeaders.FieldEncoding;
            kestrel.ResponseHeaderEncodingSelector = _ => TunnelHeaders.FieldEncoding;
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            // Each application connection holds a descriptor (requests share the one session): as many as the open-file
            // limit leaves for traffic; out of descriptors the process would abort. One more is closed at once.
            kestrel.Limits.MaxConcurrentConnections = OpenFileLimit.ConnectionsThatFit(1);
            kestrel.Listen(options.HttpBindAddress, listen => listen.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var hop = Intermediary.Create(serverEnd: false, logger, viaPseudonym);
        app.Run(context => metrics.ServeAsync(context, c => HandleAsync(c, hop, session, options, logger)));
        session.Start();
        try
        {
            await TunnelHosting.StartAsync(app, "general.httpBindAddress", options.HttpBindAddress).ConfigureAwait(false);
        }
        catch
        {
            await app.DisposeAsync().ConfigureAwait(false);
            await session.DisposeAsync().ConfigureAwait(false);
            credentials.Dispose();
            metrics.Dispose();
            throw;
        }
        var bound = TunnelHosting.BoundEndpoint(app, options.HttpBindAddress);
        TunnelLog.Listening(logger, "client", bound, $"HTTP/1.1; carried to {options.ConnectAddress}; Via {hop.Pseudonym}");
        return new TunnelClient(app, session, credentials, logger, options.DrainTimeout, bound, metrics);
    }

    /// <summary>
    /// Stops taking requests and lets those in flight finish for <c>system.drainTimeout</c>, or until
    /// <paramref name="hurry"/> is cancelled; then closes the session.
    /// </summary>
    public Task StopAsync(CancellationToken hurry) => TunnelHosting.StopAsync(_app, _logger, _drainTimeout, hurry);

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        await _session.DisposeAsync().ConfigureAwait(false);
        _credentials.Dispose();
        Metrics.Dispose();
    }

    private static async Task HandleAsync(HttpContext context, Intermediary hop, TunnelSession session, TunnelOptions options, ILogger logger)
    {
        if (HttpMethods.IsConnect(context.Request.Method))
        {
            // This end serves as the service's origin, not as a proxy: the HTTP client would refuse it on the way anyway.
            await MessageCopy.RefuseAsync(context, HttpStatusCode.NotImplemented, new TunnelFailure("http_request_error", "CONNECT is not served here")).ConfigureAwait(false);
            return;
        }
        // Before anything that needs the session or the backend: an OPTIONS that ends here (even "OPTIONS *", the usual
        // question for an intermediary) is answered while the session is down, and a loop is stopped at its first turn.
        if (await hop.AnsweredHereAsync(context).ConfigureAwait(false))
        {
            return;
        }
        if (HttpMethods.IsOptions(context.Request.Method) && context.Features.Get<IHttpRequestFeature>()?.RawTarget == "*")
        {
            // The server end's HTTP client sends only origin-form targets: forwarded, "OPTIONS *" would reach the backend as
            // "OPTIONS /", a question about one resource rather than about the server (RFC 9110 §9.3.7).
            await MessageCopy.RefuseAsync(context, HttpStatusCode.NotImplemented, new TunnelFailure("http_request_error", "OPTIONS * (asterisk-form) is not carried to the backend")).ConfigureAwait(false);
            return;
        }
        if (MessageCopy.NamesOtherThanChunked(context.Request.Headers.TransferEncoding))
        {
            // Kestrel takes "gzip, chunked" and undoes the chunked framing alone: the backend got the still coded body as
            // the content, the coding's name gone with the field (RFC 9112 §6.1: 501 for a coding not understood). The
            // body is left unread, so the connection closes after the answer.
            await MessageCopy.RefuseAsync(context, HttpStatusCode.NotImplemented, new TunnelFailure("http_request_error", "the request has a transfer coding other than chunked"), closeConnection: true).ConfigureAwait(false);
            return;
        }
        if (MessageCopy.NamesChunkedTwice(context.Request.Headers.TransferEncoding))
        {
            // Kestrel undoes the chunked framing once: the backend got the body still chunked once, as its content. A sender
            // may not chunk a body twice (RFC 9112 §6.1), so the request is malformed; where its body ends is unsure, so the
            // connection closes after the answer.
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadRequest, new TunnelFailure("http_request_error", "the request's Transfer-Encoding names chunked more than once"), closeConnection: true).ConfigureAwait(false);
            return;
        }
        var status = session.Status;
        if (status.Phase != TunnelPhase.Up)
        {
            var failure = status.Phase == TunnelPhase.Down
                ? new TunnelFailure(status.ErrorType ?? "destination_unavailable", $"tunnel down: {status.Details}")
                : status.Phase == TunnelPhase.Stopped ? new TunnelFailure("proxy_internal_response", "stopping") : TunnelFailure.NotYetConnected;
            await MessageCopy.RefuseAsync(context, HttpStatusCode.ServiceUnavailable, failure).ConfigureAwait(false);
            return;
        }
        // The link carries an upgrade as extended CONNECT, which has no room for the method, and the server end asks the
        // backend with GET: a DELETE or OPTIONS with Upgrade reached it as a GET, and a backend that declined the upgrade
        // answered that GET. Another method's request goes on as itself, its Upgrade ignored (RFC 9110 §7.8 lets a server).
        if (HttpMethods.IsGet(context.Request.Method) && context.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
        {
            await UpgradeForwarder.RelayAsync(context, hop, upgrade, session.Invoker, session.Origin, options, logger, session.LinkFailure).ConfigureAwait(false);
            return;
        }
        using var message = MessageCopy.CreateRequest(context, hop, session.Origin, session.Version, toPeer: true);
        if (options.AddForwarded)
        {
            MessageCopy.AddForwarded(message, context, withHost: true);
        }
        message.Headers.TryAddWithoutValidation(TunnelHeaders.AcceptEncoding, TunnelHeaders.Brotli);
        if (MessageCopy.HasBody(context))
        {
            var length = context.Request.ContentLength;
            var compress = options.Compress && length is not 0 && !context.Request.Headers.ContainsKey("Content-Encoding");
            // Request trailers (announced in a Trailer field, RFC 9110 §6.6.2) cross in chunked framing of our own.
            var trailers = length is null && TunnelHeaders.DeclaresTrailers(context.Request.Headers)
                ? context.Features.Get<IHttpRequestTrailersFeature>()
                : null;
            // The server end gets no Connection field (HTTP/2 has none): the trailer fields it names stay here.
            var connection = new TunnelHeaders.Nominees(context.Request.Headers.Connection);
            var content = new StreamingContent(new RequestBodyStream(context.Request.BodyReader), compress, context.RequestAborted,
                trailers is null ? null : () => trailers.Available ? TunnelHeaders.NotNominated(TunnelHeaders.Lines(trailers.Trailers), connection) : [],
                senderIdle: options.IdleTimeout);
            if (trailers is not null)
            {
                message.Headers.TryAddWithoutValidation(TunnelHeaders.Framing, TunnelHeaders.Chunked);
            }
            MessageCopy.CopyContentFields(context.Request, content);
            if (compress)
            {
                message.Headers.TryAddWithoutValidation(TunnelHeaders.Encoding, TunnelHeaders.Brotli);
                if (length is { } original)
                {
                    message.Headers.TryAddWithoutValidation(TunnelHeaders.Length, original.ToString(System.Globalization.CultureInfo.InvariantCulture));
                }
            }
            else if (length is { } known)
            {
                content.Headers.ContentLength = known;
            }
            message.Content = content;
        }
        else
        {
            message.Content = MessageCopy.EmptyContent(context.Request, always: false);
        }
        await ExchangeForwarder.ForwardAsync(context, session.Invoker, message, compressResponse: false, fromPeer: true, logger, context.RequestAborted,
            linkTimedOut: session.LinkFailure, receiverIdle: options.IdleTimeout).ConfigureAwait(false);
    }
}
