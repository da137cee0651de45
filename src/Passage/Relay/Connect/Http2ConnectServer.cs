using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport.Handoff;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// Kestrel, used for what it does best here: HTTP/2 framing, flow control and stream multiplexing
/// of connections that Passage accepted and TLS-terminated itself and hands over.
/// No socket is bound: connections arrive through a <see cref="HandoffListener"/>.
/// </summary>
internal sealed class Http2ConnectServer : IAsyncDisposable
{
    private const string HandoffName = "connect";

    /// <summary>How Kestrel reads a request's field values: Latin-1, each byte one character, as the HTTP/1.1 door does (RFC 9110 §5.5).</summary>
    internal static readonly Encoding FieldEncoding = Encoding.Latin1;

    private readonly WebApplication _app;
    private readonly HandoffListenerFactory _factory;
    private readonly KestrelConnectionErrors _errors;

    private Http2ConnectServer(WebApplication app, HandoffListenerFactory factory, KestrelConnectionErrors errors)
    {
        _app = app;
        _factory = factory;
        _errors = errors;
    }

    /// <summary>
    /// Starts Kestrel with <paramref name="handler"/> serving every HTTP/2 request, the connections it ends with an error
    /// counted in <paramref name="metrics"/>.
    /// </summary>
    public static async Task<Http2ConnectServer> StartAsync(ConnectOptions options, RequestDelegate handler, ILoggerFactory loggerFactory, RelayMetrics metrics)
    {
        var factory = new HandoffListenerFactory();
        var builder = KestrelHost.CreateBuilder("HTTP/2 CONNECT server", loggerFactory);
        builder.Services.AddSingleton<IConnectionListenerFactory>(factory);
        // The grace StopAsync is given is the only limit on a stop: the host's own (30 s by default, on the wall clock)
        // would cut the HTTP/2 tunnels before a longer drain deadline.
        KestrelHost.StopOnlyByGrace(builder);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // Passage terminated TLS before the handoff, so Kestrel sees a cleartext transport while
            // clients rightly send :scheme https (RFC 9113 §8.3.1); accept it.
            kestrel.AllowAlternateSchemes = true;
            // Field values are read as the HTTP/1.1 door reads them, each byte one character: Kestrel's default, UTF-8,
            // would answer a byte of obs-text (RFC 9110 §5.5) that the HTTP/1.1 door takes with a GOAWAY, and make a
            // value shorter in characters than it was in bytes on the wire. The authority so that one Kestrel would
            // reset for its bytes reaches the relay, which answers it 400 (AuthorityFieldEncoding).
            kestrel.RequestHeaderEncodingSelector = name => AuthorityFieldEncoding.Reads(name) ? AuthorityFieldEncoding.Instance : FieldEncoding;
            // Tunnels may sit idle or move bytes slowly for as long as the relay's idle timeout
            // allows: Kestrel's rate and size guards for request bodies must not cut them.
            kestrel.Limits.MinRequestBodyDataRate = null;
            kestrel.Limits.MinResponseDataRate = null;
            kestrel.Limits.MaxRequestBodySize = null;
            // A header block begun and never ended (HEADERS without END_HEADERS, no CONTINUATION) holds its connection
            // for as long as an HTTP/1.1 head may take, not Kestrel's 30 s.
            kestrel.Limits.RequestHeadersTimeout = options.RequestHeadTimeout;
            // The relay bounds a request's header list as it bounds an HTTP/1.1 head, and answers 431 with a Proxy-Status
            // (Http2ConnectHandler). Kestrel's bounds are kept well above it, so that its own answers (a bare 431, or a
            // GOAWAY that takes every tunnel of the connection with it for a field HPACK will not decode) come only
            // past them: at least its defaults (32 KiB, 100 fields), and twice the relay's when that is more.
            kestrel.Limits.MaxRequestHeadersTotalSize = Math.Max(kestrel.Limits.MaxRequestHeadersTotalSize, 2 * options.MaxRequestHeadBytes);
            kestrel.Limits.Http2.MaxRequestHeaderFieldSize = kestrel.Limits.MaxRequestHeadersTotalSize;
            // Kestrel will not start with a request buffer (1 MiB by default) smaller than those bounds: a head limit over
            // 512 KiB (the settings take up to 1 MiB) ended the start in its InvalidOperationException.
            if (kestrel.Limits.MaxRequestBufferSize is { } buffer && buffer < kestrel.Limits.MaxRequestHeadersTotalSize)
            {
                kestrel.Limits.MaxRequestBufferSize = kestrel.Limits.MaxRequestHeadersTotalSize;
            }
            kestrel.Limits.MaxRequestHeaderCount = Math.Max(kestrel.Limits.MaxRequestHeaderCount, 2 * Http1ParseLimits.DefaultMaxHeaderCount);
            kestrel.Limits.Http2.MaxStreamsPerConnection = options.MaxStreamsPerConnection;
            // The defaults (768 KiB per stream, 1 MiB per connection) cap one tunnel's throughput.
            kestrel.Limits.Http2.InitialStreamWindowSize = options.StreamWindowBytes;
            kestrel.Limits.Http2.InitialConnectionWindowSize = options.ConnectionWindowBytes;
            kestrel.Limits.Http2.KeepAlivePingDelay = TimeSpan.FromSeconds(30);
            kestrel.Limits.Http2.KeepAlivePingTimeout = TimeSpan.FromSeconds(30);
            kestrel.Listen(new HandoffEndPoint(HandoffName), listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                // So that the relay learns which of its connections Kestrel ended with an error (ConnectRelay.Http2End).
                listen.Use(next => connection =>
                {
                    KestrelConnectionErrors.Follow(connection);
                    return next(connection);
                });
            });
        });
        var app = builder.Build();
        app.Run(handler);
        var errors = new KestrelConnectionErrors(app.Services.GetRequiredService<IMeterFactory>(), metrics);
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch
        {
            errors.Dispose();
            throw;
        }
        return new Http2ConnectServer(app, factory, errors);
    }

    /// <summary>Hands a TLS-terminated (or prior-knowledge h2c) connection to Kestrel.</summary>
    public bool Hand(ConnectionContext connection) => _factory.Listener(HandoffName).Hand(connection);

    /// <summary>Stops Kestrel; open HTTP/2 connections are closed after <paramref name="grace"/>.</summary>
    public async Task StopAsync(TimeSpan grace)
    {
        using var cts = new CancellationTokenSource(grace);
        await _app.StopAsync(cts.Token).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync().ConfigureAwait(false);
        _errors.Dispose();
    }
}
