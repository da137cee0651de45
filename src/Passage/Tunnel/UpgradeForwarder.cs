using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Passage.Http;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// Protocol upgrades (WebSocket and any other HTTP/1.1 <c>Upgrade</c>) through the tunnel. HTTP/2 has no
/// Upgrade, so the link carries them as extended CONNECT (RFC 8441 §4: <c>:protocol</c> names the protocol):
/// <code>
///  app ──GET, Upgrade: websocket──► client end ──CONNECT :protocol websocket──► server end ──GET, Upgrade──► backend
///  app ◄──────101────────────────── client end ◄──────────200───────────────── server end ◄─────101──────── backend
///      ◄════════════ bytes ═══════════════════════════ one HTTP/2 stream ═══════════════════════════════════►
/// </code>
/// The upgrade's own fields (Sec-WebSocket-Key, -Accept, -Protocol, -Extensions, -Version) travel unchanged,
/// so the application and the backend complete their handshake with each other, end to end. An answer other
/// than 101 from the backend comes back as an ordinary response.
/// </summary>
internal static class UpgradeForwarder
{
    /// <summary>The pump of an upgraded connection: closed once idle for <c>system.idleTimeout</c>; it is never two plain sockets.</summary>
    private static PumpOptions UpgradedPump(TunnelOptions options) => new() { IdleTimeout = options.IdleTimeout, ZeroCopy = false };

    /// <summary>
    /// Server end: open the upgrade at the backend and, when it switches, join it to the CONNECT stream. The upgrade goes on
    /// a connection of its own, whose socket this end holds, so that the application's end of sending (read from the link
    /// as <see cref="ChunkFramedStream"/>'s last chunk) reaches the backend as a half-close.
    /// </summary>
    public static async Task ServeAsync(HttpContext context, Intermediary hop, IHttpExtendedConnectFeature connect, string origin, TunnelOptions options, BackendConnections connections, ILogger logger)
    {
        var protocol = connect.Protocol ?? "";
        Socket? backendSocket = null;
        // Disposed on every path with the invoker: a connection it still holds (an answer other than 101 leaves it pooled)
        // is closed, giving its slot back.
        var handler = TunnelServer.CreateBackendHandler(options, connections, socket => backendSocket = socket);
        using var backend = new HttpMessageInvoker(handler, disposeHandler: true);
        var framed = context.Request.Headers[TunnelHeaders.Framing] == TunnelHeaders.Chunked;
        using var message = MessageCopy.CreateRequest(context, hop, origin, HttpVersion.Version11, HttpMethod.Get);
        if (MessageCopy.SetBackendHost(context, message) is { } badHost)
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadRequest, badHost).ConfigureAwait(false);
            return;
        }
        message.Headers.TryAddWithoutValidation("Connection", "Upgrade");
        message.Headers.TryAddWithoutValidation("Upgrade", protocol);
        if (options.AddForwarded)
        {
            MessageCopy.AddForwarded(message, context, withHost: false);
        }
        using var timer = new BackendTimer(options.BackendTimeout, context.RequestAborted);
        if (await ExchangeForwarder.SendOrRefuseAsync(context, backend, message, logger, context.RequestAborted, timer).ConfigureAwait(false) is not { } response)
        {
            return;
        }
        using (response)
        {
            if (response.StatusCode != HttpStatusCode.SwitchingProtocols)
            {
                if ((int)response.StatusCode is >= 200 and < 300)
                {
                    await DeclineWithSuccessAsync(context, connect, response, timer, logger).ConfigureAwait(false);
                    return;
                }
                await ExchangeForwarder.CopyResponseAsync(context, response, compressResponse: false, fromPeer: false, logger, context.RequestAborted, timer).ConfigureAwait(false);
                return;
            }
            if (await ExchangeForwarder.RefusedAsInvalidAsync(context, response, logger, switched: true).ConfigureAwait(false))
            {
                return;
            }
            MessageCopy.CopyResponseHead(response, context.Response, keepContentLength: false);
            // RFC 8441 §5: success is a 2xx; the 101 stays between this end and the backend.
            context.Response.StatusCode = StatusCodes.Status200OK;
            context.Response.Headers[TunnelHeaders.Switched] = protocol;
            if (framed)
            {
                // The client end frames its bytes only once told this end reads the framing back.
                context.Response.Headers[TunnelHeaders.Framing] = TunnelHeaders.Chunked;
            }
            Stream upstream;
            Stream downstream;
            try
            {
                upstream = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
                downstream = await connect.AcceptAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (BodyCopier.IsIoFailure(e))
            {
                TunnelLog.UpgradeEnded(logger, protocol, e.GetType().Name);
                context.Abort();
                return;
            }
            await using var tunnel = new StreamConnection(framed ? ChunkFramedStream.UnframingReads(downstream) : downstream,
                completeWrites: async (_, _) => await context.Response.CompleteAsync().ConfigureAwait(false),
                abort: context.Abort);
            // The upgraded stream writes straight to the socket, so a half-close after the last write loses nothing.
            await using var backendSide = new StreamConnection(upstream, transport: backendSocket);
            var result = await BytePump.RunAsync(tunnel, backendSide, UpgradedPump(options), cancellationToken: context.RequestAborted).ConfigureAwait(false);
            TunnelLog.UpgradeEnded(logger, protocol, result.End.ToString());
        }
    }

    /// <summary>
    /// The backend declined the upgrade with a 2xx answer: send it as 200 + <see cref="TunnelHeaders.Status"/>, its body
    /// through the stream, read under <paramref name="backend"/>'s clock like any answer's.
    /// </summary>
    private static async Task DeclineWithSuccessAsync(HttpContext context, IHttpExtendedConnectFeature connect, HttpResponseMessage response, BackendTimer backend, ILogger logger)
    {
        if (await ExchangeForwarder.RefusedAsInvalidAsync(context, response, logger).ConfigureAwait(false))
        {
            return;
        }
        MessageCopy.CopyResponseHead(response, context.Response, keepContentLength: false);
        context.Response.Headers[TunnelHeaders.Status] = ((int)response.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture);
        context.Response.StatusCode = StatusCodes.Status200OK;
        try
        {
            var body = backend.WatchBackend(await response.Content.ReadAsStreamAsync(backend.Token).ConfigureAwait(false));
            var stream = await connect.AcceptAsync().ConfigureAwait(false);
            if (await BodyCopier.CopyAsync(body, stream, backend.Token).ConfigureAwait(false) is var result and not BodyCopyResult.Completed)
            {
                ExchangeForwarder.CutOff(context, backend, logger, result.ToString());
                return;
            }
            await context.Response.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (BodyCopier.IsIoFailure(e))
        {
            TunnelLog.UpgradeEnded(logger, connect.Protocol ?? "", e.GetType().Name);
            context.Abort();
        }
    }

    /// <summary>Client end: carry an HTTP/1.1 Upgrade request across as extended CONNECT and, on success, switch.</summary>
    public static async Task RelayAsync(HttpContext context, Intermediary hop, IHttpUpgradeFeature upgrade, HttpMessageInvoker tunnel, string origin, TunnelOptions options, ILogger logger,
        Func<Exception, TunnelFailure?>? linkTimedOut = null)
    {
        // RFC 9110 §7.8: the first protocol offered, a token with an optional "/version".
        var protocol = context.Request.Headers.Upgrade.ToString().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).FirstOrDefault() ?? "";
        var parts = protocol.Split('/');
        if (parts.Length > 2 || !parts.All(FieldSyntax.IsToken))
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadRequest, new TunnelFailure("http_request_error", "the Upgrade field names no protocol")).ConfigureAwait(false);
            return;
        }
        using var message = MessageCopy.CreateRequest(context, hop, origin, HttpVersion.Version20, HttpMethod.Connect, toPeer: true);
        // RFC 8441 §4: the protocol token, as registered ("websocket"), goes in :protocol.
        message.Headers.Protocol = protocol.ToLowerInvariant();
        // Offered: the application's bytes in chunked framing, so that its half-close can cross (ChunkFramedStream).
        message.Headers.TryAddWithoutValidation(TunnelHeaders.Framing, TunnelHeaders.Chunked);
        if (options.AddForwarded)
        {
            MessageCopy.AddForwarded(message, context, withHost: true);
        }
        if (await ExchangeForwarder.SendOrRefuseAsync(context, tunnel, message, logger, context.RequestAborted, linkTimedOut: linkTimedOut).ConfigureAwait(false) is not { } response)
        {
            return;
        }
        using (response)
        {
            if (response.StatusCode != HttpStatusCode.OK || MessageCopy.Single(response, TunnelHeaders.Switched) is null)
            {
                await ExchangeForwarder.CopyResponseAsync(context, response, compressResponse: false, fromPeer: true, logger, context.RequestAborted,
                    receiverIdle: options.IdleTimeout).ConfigureAwait(false);
                return;
            }
            MessageCopy.CopyResponseHead(response, context.Response, keepContentLength: false);
            context.Response.Headers.Upgrade = protocol;
            Stream upstream;
            Stream downstream;
            try
            {
                upstream = await response.Content.ReadAsStreamAsync(context.RequestAborted).ConfigureAwait(false);
                // Sends "101 Switching Protocols" with the fields set above (RFC 9110 §15.2.2).
                downstream = await upgrade.UpgradeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (BodyCopier.IsIoFailure(e))
            {
                TunnelLog.UpgradeEnded(logger, protocol, e.GetType().Name);
                context.Abort();
                return;
            }
            // Kestrel cannot half-close an HTTP/1.1 connection either way: its transport shuts the socket down both ways when
            // output ends, so the backend's end of sending reaches the application when the connection closes (once the
            // application has ended its side too); and it takes the application's half-close for the connection's close,
            // dropping whatever is written after it.
            await using var application = new StreamConnection(downstream, abort: context.Abort);
            var framed = MessageCopy.Single(response, TunnelHeaders.Framing) == TunnelHeaders.Chunked ? ChunkFramedStream.FramingWrites(upstream) : null;
            // The application's end of sending is its connection's end: Kestrel drops whatever is written after it, so the
            // backend's bytes could reach no one, and the run, which waited for the backend's end (or system.idleTimeout, never
            // while the backend kept sending), held the link's stream and the server end's backend connection. Once the end
            // has crossed (as the last chunk, where the server end reads the framing), the run ends.
            using var applicationGone = new CancellationTokenSource();
            await using var server = new StreamConnection(framed ?? upstream, completeWrites: async (_, cancellationToken) =>
            {
                if (framed is not null)
                {
                    await framed.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
                }
                await applicationGone.CancelAsync().ConfigureAwait(false);
            });
            // Not ended by RequestAborted: Kestrel raises it at the application's half-close, whose end of sending is to
            // cross as the last chunk first.
            var result = await BytePump.RunAsync(application, server, UpgradedPump(options), cancellationToken: applicationGone.Token).ConfigureAwait(false);
            TunnelLog.UpgradeEnded(logger, protocol, result.End == PumpEnd.Canceled && applicationGone.IsCancellationRequested ? "ApplicationClosed" : result.End.ToString());
        }
    }
}
