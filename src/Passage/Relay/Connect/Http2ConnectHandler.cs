using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// Serves one HTTP/2 request handed to Kestrel: an extended CONNECT with <c>:protocol connect-tcp</c>
/// (draft-ietf-httpbis-connect-tcp; RFC 8441 §4 mechanics) whose path names the target, or a classic CONNECT
/// (RFC 9113 §8.5) whose <c>:authority</c> does, as browsers and curl send it to an HTTPS proxy. Each
/// request is one tunnel on its own stream, flow-controlled by HTTP/2, so a stalled tunnel does not
/// stall the others on the connection.
/// </summary>
/// <remarks>
/// A request's header list is held to the bounds of an HTTP/1.1 head (<paramref name="maxHeadBytes"/>, and
/// <see cref="Http1ParseLimits.DefaultMaxHeaderCount"/> fields) and answered 431 with a Proxy-Status beyond them;
/// Kestrel's own bounds (<see cref="Http2ConnectServer"/>) are set above these, so that it is the relay that answers.
/// </remarks>
internal sealed class Http2ConnectHandler(TunnelOpener opener, TunnelPump tunnels, ILogger logger, RelayMetrics metrics, int maxHeadBytes, TimeProvider time)
{
    private long _nextTunnelId;

    public async Task HandleAsync(HttpContext context)
    {
        var id = Interlocked.Increment(ref _nextTunnelId);
        var drain = context.Features.Get<Http2DrainDeadline>();
        drain?.Serving(context.Response);
        var connect = context.Features.Get<IHttpExtendedConnectFeature>();
        if (HeadProblem(context, connect) is { } tooLarge)
        {
            Refuse(context, id, RefusalReason.HeadTooLarge, tooLarge);
            return;
        }
        if (connect is not { IsExtendedConnect: true } && context.Request.Path == MasqueTcpPath.PingPath && (HttpMethods.IsHead(context.Request.Method) || HttpMethods.IsGet(context.Request.Method)))
        {
            // A client measuring its round trip to this relay: answered at once, counted nowhere.
            context.Response.StatusCode = StatusCodes.Status204NoContent;
            return;
        }
        // A classic CONNECT (RFC 9113 §8.5: no :protocol, and neither :scheme nor :path, which Kestrel enforces) names its
        // target in :authority, as browsers and curl send it to an HTTPS proxy they speak HTTP/2 to; an extended one
        // (connect-tcp) in its path.
        var classic = connect is not { IsExtendedConnect: true };
        if (classic && !HttpMethods.IsConnect(context.Request.Method))
        {
            Refuse(context, id, RefusalReason.MethodNotAllowed, "only CONNECT is served");
            return;
        }
        if (!classic && !string.Equals(connect!.Protocol, "connect-tcp", StringComparison.OrdinalIgnoreCase))
        {
            Refuse(context, id, RefusalReason.MalformedRequest, "unsupported :protocol; use connect-tcp");
            return;
        }
        if (!classic && !AuthorityFieldEncoding.Takes(Encoding.Latin1.GetBytes(context.Request.Headers.Host.ToString())))
        {
            // RFC 9113 §8.3.1: a request made directly carries :authority, host and optional port, no userinfo. Kestrel puts
            // it in Host. It lets an empty one through, and one the relay does not take comes as AuthorityFieldEncoding reads
            // it, which Kestrel lets through too (it resets a stream whose authority it refuses, ":443" or "[::1", say).
            Refuse(context, id, RefusalReason.MalformedRequest, ":authority is missing or not host[:port]");
            return;
        }
        // A classic CONNECT's :authority is its target, which Kestrel puts in the raw target: read as the HTTP/1.1 door
        // reads its authority-form target, so that both take the same targets.
        var rawTarget = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        string? host;
        int port;
        string targetProblem;
        if (!(classic
            ? ConnectTarget.TryParse(rawTarget ?? "", out host, out port, out targetProblem)
            : MasqueTcpPath.TryParsePath(rawTarget, out host, out port, out targetProblem)))
        {
            Refuse(context, id, RefusalReason.MalformedRequest, targetProblem);
            return;
        }
        if (context.Request.Headers.ProxyAuthorization.Count > 1)
        {
            // Refused as the HTTP/1.1 door refuses it, whether or not credentials are required (Kestrel would join the two
            // with a comma, which no credentials hold).
            Refuse(context, id, RefusalReason.MalformedRequest, Http1ConnectParser.RepeatedProxyAuthorization);
            return;
        }
        if (ContentProblem(context.Request.Headers) is { } content)
        {
            Refuse(context, id, RefusalReason.MalformedRequest, content);
            return;
        }
        var credentials = opener.Authenticate(context.Request.Headers.ProxyAuthorization);
        // Kestrel made the field a string before any code of the relay's ran, which the relay cannot clear (the HTTP/1.1
        // door reads it where it lies in a buffer cleared after): the request lets go of it once checked, rather than
        // holding it for the tunnel's life.
        context.Request.Headers.Remove(HeaderNames.ProxyAuthorization);
        if (credentials is { } denied)
        {
            Refuse(context, id, denied, "credentials required");
            return;
        }

        // From here the request, then its tunnel, holds the connection open: the idle clock stops while the destination is
        // dialed (a slow dial near the idle timeout is not cut), and starts again at the tunnel's end. A request that
        // comes after the clock ran out (the connection told to go away for carrying nothing), or once the relay has
        // begun to stop, does not start: its client sent it before it read the GOAWAY.
        if (tunnels.IsStopping)
        {
            RefuseUnprocessed(context, id, RefusalReasonHttp.ShuttingDownDetail);
            return;
        }
        IDisposable? busy = null;
        if (context.Features.Get<Http2ConnectionIdle>() is { } idle && (busy = idle.TryStartTunnel()) is null)
        {
            RefuseUnprocessed(context, id, "connection closing after its idle timeout");
            return;
        }
        using var started = busy;
        // The dial and the tunnel end when the request is aborted (the client reset its stream or left) or at the drain
        // deadline, which has the dial answered and the tunnel reset on its own stream (Http2DrainDeadline).
        using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted, drain?.Token ?? CancellationToken.None);
        var client = context.Connection.RemoteIpAddress;
        TunnelLog.Requested(logger, id, context.Connection.RemoteIpAddress, host, port);
        var opening = await opener.OpenAsync(host, port, client, ended.Token).ConfigureAwait(false);
        if (opening.Upstream is not { } upstream)
        {
            if (opening.Refusal == RefusalReason.ShuttingDown && !tunnels.IsStopping)
            {
                // The dial was given up because the request was aborted: the client reset its stream, nobody to answer.
                metrics.Refused(ConnectRelay.Http2FrontDoor, RefusalReason.ClientClosed);
                return;
            }
            Refuse(context, id, opening.Refusal, opening.Detail);
            return;
        }
        if (tunnels.IsStopping)
        {
            // The stop began while the destination was being dialed: a tunnel started now would be cut at the drain
            // deadline. Nothing has gone to the destination, so the request is refused as one that came after the GOAWAY.
            await upstream.DisposeAsync().ConfigureAwait(false);
            opening.Lease?.Dispose();
            RefuseUnprocessed(context, id, RefusalReasonHttp.ShuttingDownDetail);
            return;
        }

        Stream stream;
        try
        {
            stream = classic ? await AcceptClassicAsync(context).ConfigureAwait(false) : await connect!.AcceptAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            await upstream.DisposeAsync().ConfigureAwait(false);
            opening.Lease?.Dispose();
            if (e is IOException or OperationCanceledException or InvalidOperationException)
            {
                // The client reset the stream before the answer went out: no tunnel started.
                metrics.Refused(ConnectRelay.Http2FrontDoor, RefusalReason.ClientClosed);
                return;
            }
            throw;
        }
        var lease = opening.Lease;
        var destination = new Http2TunnelDestination(upstream, time);
        var trailers = context.Features.Get<IHttpRequestTrailersFeature>();
        await using var tunnel = new Http2TunnelClient(new StreamConnection(
            stream,
            completeWrites: async (_, _) => await context.Response.CompleteAsync().ConfigureAwait(false),
            abort: () =>
            {
                // The pump aborts this side first, then the destination's: when the request was aborted before the relay
                // ended the stream, the client reset it (or left), and a destination told of its end already is closed
                // whole. Not so at the relay's stop, which closes every tunnel. Such a destination holds the slot until
                // it is closed (up to LingeringClose.Deadline; the tunnel's end gives the slot back after the
                // destination's disposal): the tunnel limits bound the relay's connections to destinations.
                if (!(context.RequestAborted.IsCancellationRequested && !tunnels.IsStopping && destination.ClientLeft()))
                {
                    // The slot goes back before the reset goes out: a client at its limit that opens a tunnel as soon as
                    // it sees one reset finds the slot free (the tunnel's end gives it back again, which does nothing).
                    lease?.Dispose();
                }
                // Trailers on a tunnel's stream make it malformed (RFC 9113 §8.5, §8.1.1): PROTOCOL_ERROR.
                Reset(context, Http2TunnelClient.SentTrailers(trailers) ? ProtocolError : ConnectError);
            }), trailers);
        // Kestrel keeps the stream as long as this request runs: it waits for the tunnel's end.
        await tunnels.RunAsync(tunnel, destination, lease, ReadOnlyMemory<byte>.Empty, id, ended.Token).ConfigureAwait(false);
    }

    /// <summary>
    /// Answers a classic CONNECT 200 (its HEADERS without END_STREAM, at once) and returns its tunnel: the request's
    /// content one way, the response's the other, as Kestrel serves both at once over HTTP/2.
    /// </summary>
    private static async Task<Stream> AcceptClassicAsync(HttpContext context)
    {
        context.Response.StatusCode = StatusCodes.Status200OK;
        // Flushed, not only started: Kestrel holds an HTTP/2 response's HEADERS until its first flush, and a client waits
        // for them before it sends a byte (a TLS client its ClientHello).
        await context.Response.Body.FlushAsync(context.RequestAborted).ConfigureAwait(false);
        return new ClassicConnectStream(context.Request.Body, context.Response.Body);
    }

    /// <summary>
    /// Null when the request announces no content, else why it is refused: as the HTTP/1.1 door refuses a Content-Length
    /// other than zero or a Transfer-Encoding (RFC 9110 §9.3.6), and a Content-Length of zero too. Over HTTP/2 the field
    /// bounds the request's DATA (RFC 9113 §8.1.1), which Kestrel holds it to: a tunnel under one was answered 200, then
    /// reset with PROTOCOL_ERROR once the client had sent that many bytes (at its first byte for zero), and counted as
    /// the client failing.
    /// </summary>
    private static string? ContentProblem(IHeaderDictionary headers) =>
        headers.ContentLength is { } length ? (length == 0 ? ContentLengthOnHttp2Connect : RefusalReasonHttp.ContentOnConnectDetail)
        : headers.TransferEncoding.Count > 0 ? RefusalReasonHttp.TransferEncodingOnConnectDetail
        : null;

    /// <summary>The detail of an HTTP/2 CONNECT with <c>content-length: 0</c>, which would end its tunnel at the first byte.</summary>
    internal const string ContentLengthOnHttp2Connect = "content-length on an HTTP/2 CONNECT request";

    /// <summary>
    /// Null when the header list is within the relay's bounds, else why not: its size measured as the HTTP/1.1 head
    /// that would carry the same request, over <c>maxHeadBytes</c>, or more fields than an HTTP/1.1 head may have.
    /// </summary>
    /// <remarks>
    /// Measured so, the two doors agree: a request fits over HTTP/2 when the same request fits over HTTP/1.1. Measured
    /// as RFC 9113 §6.5.2 does (32 bytes more per field), a CONNECT with a 1 KiB token to a five-digit port came to 1,113
    /// bytes as an HTTP/1.1 head and 1,353 as an HTTP/2 list, so a 1200-byte limit took it on one door and answered 431
    /// on the other; measured so, the HTTP/2 request comes to 1,173. The request line is built from the
    /// pseudo-header fields: <c>:method</c>, the target (<c>:path</c>; for a classic CONNECT, which carries neither
    /// <c>:scheme</c> nor <c>:path</c>, RFC 9113 §8.5, <c>:authority</c>, which Kestrel puts in the raw target) and
    /// the version; then each field as a field line (<c>name: value</c> and CRLF), <c>:authority</c> under its
    /// HTTP/1.1 name Host (Kestrel keeps it in the header dictionary so), <c>:scheme</c> and <c>:protocol</c> under
    /// their own; then the empty line. Sizes are in bytes as they came (<see cref="Octets"/>), as the HTTP/1.1 door
    /// counts them: a value of five "é" in UTF-8 is ten bytes on either door (Kestrel's default reading, UTF-8, made it five).
    /// </remarks>
    private string? HeadProblem(HttpContext context, IHttpExtendedConnectFeature? connect)
    {
        var request = context.Request;
        long size = Octets(request.Method) + 1 + Octets(context.Features.Get<IHttpRequestFeature>()?.RawTarget) + VersionAndLineEnd.Length;
        if (connect is { IsExtendedConnect: true } || !HttpMethods.IsConnect(request.Method))
        {
            size += FieldLineSize(":scheme", request.Scheme);
        }
        if (connect is { IsExtendedConnect: true })
        {
            size += FieldLineSize(":protocol", connect.Protocol);
        }
        var count = 0;
        foreach (var (name, values) in request.Headers)
        {
            foreach (var value in values)
            {
                size += FieldLineSize(name, value);
                count++;
            }
        }
        size += LineEnd.Length;
        return size > maxHeadBytes ? "request head larger than the limit"
            : count > Http1ParseLimits.DefaultMaxHeaderCount ? "too many header fields"
            : null;
    }

    /// <summary>What ends an HTTP/1.1 request line after its target.</summary>
    private const string VersionAndLineEnd = " HTTP/1.1\r\n";

    /// <summary>What ends a field line, and the empty line that ends a head.</summary>
    private const string LineEnd = "\r\n";

    /// <summary>One field's size as an HTTP/1.1 field line: <c>name: value</c> and CRLF (RFC 9112 §5).</summary>
    private static long FieldLineSize(string name, string? value) => Octets(name) + ": ".Length + Octets(value) + LineEnd.Length;

    /// <summary>The bytes <paramref name="text"/> came as, read by Kestrel in <see cref="Http2ConnectServer.FieldEncoding"/>.</summary>
    private static int Octets(string? text) => text is null ? 0 : Http2ConnectServer.FieldEncoding.GetByteCount(text);

    /// <summary>RFC 9113 §7: the error code for a stream that broke the protocol.</summary>
    private const int ProtocolError = 0x1;

    /// <summary>RFC 9113 §7: the error code for a tunnel's TCP connection reset or abnormally closed.</summary>
    private const int ConnectError = 0xa;

    /// <summary>
    /// Ends a stream with RST_STREAM and <paramref name="errorCode"/>; by default CONNECT_ERROR, which ends a tunnel
    /// abnormally, as RFC 9113 §8.5 has a proxy answer a TCP reset from the destination. (Aborting the request would
    /// send INTERNAL_ERROR, which says the relay failed.)
    /// </summary>
    private static void Reset(HttpContext context, int errorCode = ConnectError)
    {
        if (context.Features.Get<IHttpResetFeature>() is { } reset)
        {
            reset.Reset(errorCode);
        }
        else
        {
            context.Abort();
        }
    }

    /// <summary>RFC 9113 §8.7: the error code for a stream the server did not process, which the client may send again.</summary>
    private const int RefusedStream = 0x7;

    /// <summary>
    /// Refuses a request the relay did not act on because its connection is going away: RST_STREAM with REFUSED_STREAM
    /// (RFC 9113 §8.7), which tells the client that it may send the request again on a new connection, as HttpClient does
    /// by itself (a 503 would end the request). Counted and logged as <see cref="RefusalReason.ShuttingDown"/>. A request
    /// whose destination was dialed before the stop began is one too: its connection is closed before a byte goes to it.
    /// </summary>
    private void RefuseUnprocessed(HttpContext context, long id, string detail)
    {
        metrics.Refused(ConnectRelay.Http2FrontDoor, RefusalReason.ShuttingDown);
        TunnelLog.Refused(logger, id, RefusalReason.ShuttingDown.Name(), detail);
        Reset(context, RefusedStream);
    }

    private void Refuse(HttpContext context, long id, RefusalReason reason, string detail)
    {
        metrics.Refused(ConnectRelay.Http2FrontDoor, reason);
        TunnelLog.Refused(logger, id, reason.Name(), detail);
        context.Response.StatusCode = reason.StatusCode();
        context.Response.Headers["Proxy-Status"] = ProxyStatus.Format(reason, detail);
        if (reason == RefusalReason.AuthenticationRequired)
        {
            context.Response.Headers.ProxyAuthenticate = Auth.ProxyAuthenticator.Challenge;
        }
        if (reason == RefusalReason.MethodNotAllowed)
        {
            context.Response.Headers.Allow = "CONNECT";
        }
    }
}
