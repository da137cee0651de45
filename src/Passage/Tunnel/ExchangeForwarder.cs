using System.IO.Compression;
using System.Net;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Passage.Tunnel;

/// <summary>
/// One request/response exchange, once the outgoing request is built: send it, copy the answer's head, stream
/// its body (decompressing or compressing it on the way where the two ends agreed to), pass on trailers.
/// </summary>
/// <remarks>
/// Errors are classed by blast radius: a failure before the answer started becomes a 502 with Proxy-Status;
/// one after it started aborts this request only (the client sees a cut-off HTTP/1.1 body or an HTTP/2
/// RST_STREAM); the session and the other requests carry on.
/// </remarks>
internal static class ExchangeForwarder
{
    /// <summary>
    /// Sends <paramref name="message"/> and copies the answer back: <paramref name="fromPeer"/> when the answer comes
    /// from the other end of the tunnel (this is the client end), whose <c>passage-tunnel-</c> fields are read; from a
    /// backend they are not, so that a backend cannot steer the server end.
    /// </summary>
    public static async Task ForwardAsync(
        HttpContext context,
        HttpMessageInvoker invoker,
        HttpRequestMessage message,
        bool compressResponse,
        bool fromPeer,
        ILogger logger,
        CancellationToken cancellationToken,
        BackendTimer? backend = null,
        Func<Exception, TunnelFailure?>? linkTimedOut = null,
        TimeSpan receiverIdle = default)
    {
        try
        {
            if (await SendOrRefuseAsync(context, invoker, message, logger, cancellationToken, backend, linkTimedOut).ConfigureAwait(false) is not { } response)
            {
                return;
            }
            try
            {
                await CopyResponseAsync(context, response, compressResponse, fromPeer, logger, cancellationToken, backend, receiverIdle).ConfigureAwait(false);
            }
            finally
            {
                await EndAsync(response).ConfigureAwait(false);
            }
        }
        finally
        {
            // The answer has been passed on or refused: the request body's copy, if it still runs, ends before the request does.
            if (message.Content is StreamingContent content)
            {
                await content.EndAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// Ends an exchange whose answer has been passed on or given up, then disposes the answer. An answer whose content ends
    /// its exchange asynchronously (<see cref="IAsyncDisposable"/>: <see cref="ChunkedRequestHandler"/>'s, whose request body
    /// copy reads the request's body, so the request must not end before it) is awaited.
    /// </summary>
    public static async Task EndAsync(HttpResponseMessage response)
    {
        try
        {
            if (response.Content is IAsyncDisposable exchange)
            {
                await exchange.DisposeAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            response.Dispose();
        }
    }

    /// <summary>
    /// Sends <paramref name="message"/> and returns the answer once its head is in; or, when that fails, answers the
    /// client itself (502 with the reason, 504 when <paramref name="backend"/> ran out waiting, 503 when no backend
    /// connection could be opened for want of descriptors, nothing to a client that went) and returns null. A failure that
    /// <paramref name="linkTimedOut"/> names (the session's keep-alive ping left unanswered) is answered 504 with its cause.
    /// </summary>
    public static async Task<HttpResponseMessage?> SendOrRefuseAsync(
        HttpContext context, HttpMessageInvoker invoker, HttpRequestMessage message, ILogger logger, CancellationToken cancellationToken, BackendTimer? backend = null,
        Func<Exception, TunnelFailure?>? linkTimedOut = null)
    {
        TunnelFailure? timedOut = null;
        if (message.Content is not StreamingContent)
        {
            // No body to send first (or one sent at once): the answer is owed from now.
            backend?.AwaitAnswer();
        }
        // The head and any interim answers before it are read by the HTTP client, in this flow.
        backend?.TimeConnectionReads();
        try
        {
            return await invoker.SendAsync(message, backend?.Token ?? cancellationToken).ConfigureAwait(false);
        }
        catch (Exception) when (backend is { Expired: true })
        {
            await RefuseTimedOutAsync(context, backend, logger).ConfigureAwait(false);
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested || context.RequestAborted.IsCancellationRequested)
        {
            TunnelLog.RequestFailed(logger, "canceled", e.GetType().Name);
            context.Abort();
        }
        catch (Exception e) when (message.Content is StreamingContent { Result: BodyCopyResult.SourceFailed, SenderError: { } bad }
            && !context.RequestAborted.IsCancellationRequested)
        {
            // The application's own framing was wrong (a bad chunk, a body cut short of its length, too slow): the
            // exchange on the other side was reset, not completed, and the application is told why (RFC 9209 §2.3.10).
            TunnelLog.RequestFailed(logger, "request body malformed", e.GetType().Name);
            // Where this body ends is unknown, so nothing after it on the connection can be read as a request.
            await MessageCopy.RefuseAsync(context, (HttpStatusCode)bad.StatusCode, new TunnelFailure("http_request_error", bad.Message), closeConnection: true).ConfigureAwait(false);
        }
        catch (Exception e) when (message.Content is StreamingContent { Result: BodyCopyResult.SourceFailed })
        {
            TunnelLog.RequestFailed(logger, "request body broke off", e.GetType().Name);
            context.Abort();
        }
        catch (Exception e) when ((timedOut = linkTimedOut?.Invoke(e)) is not null)
        {
            // The HTTP client fails the requests in flight with its own PROTOCOL_ERROR when the link's ping goes unanswered:
            // the peer broke no protocol, it went silent, and RFC 9209 §2.3.9 recommends 504 for that timeout.
            TunnelLog.ExchangeFailedRationed(logger, timedOut.ErrorType, $"{timedOut.Details} ({e.GetType().Name})");
            await MessageCopy.RefuseAsync(context, HttpStatusCode.GatewayTimeout, timedOut).ConfigureAwait(false);
        }
        catch (Exception e) when (message.Content is StreamingContent { Result: BodyCopyResult.DestinationFailed })
        {
            // The receiver stopped taking the body (a backend that answered early and closed, a peer that went): the HTTP
            // client's own words, "Error while copying content to a stream.", said nothing of it.
            var failure = new TunnelFailure("connection_terminated", "the connection ended before the request body was sent whole");
            TunnelLog.ExchangeFailedRationed(logger, failure.ErrorType, $"{failure.Details} ({e.GetType().Name})");
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadGateway, failure).ConfigureAwait(false);
        }
        catch (Exception e) when (BackendConnections.IsLimitReached(e))
        {
            // Every descriptor left for backend connections is in use: the backend was not asked, and may be later.
            TunnelLog.ExchangeFailedRationed(logger, BackendConnections.LimitReached.ErrorType, BackendConnections.LimitReached.Details);
            await MessageCopy.RefuseAsync(context, HttpStatusCode.ServiceUnavailable, BackendConnections.LimitReached).ConfigureAwait(false);
        }
        catch (Exception e) when (BodyCopier.IsIoFailure(e) || e is System.Security.Authentication.AuthenticationException)
        {
            var failure = TunnelFailure.From(e);
            TunnelLog.ExchangeFailedRationed(logger, failure.ErrorType, failure.Details);
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadGateway, failure).ConfigureAwait(false);
        }
        finally
        {
            backend?.Answered();
        }
        return null;
    }

    /// <summary>The backend kept the request waiting past <c>system.backendTimeout</c> before its answer began: 504.</summary>
    public static async Task RefuseTimedOutAsync(HttpContext context, BackendTimer backend, ILogger logger)
    {
        var waited = Configuration.Duration.Format(backend.Limit);
        TunnelLog.BackendTimedOutRationed(logger, waited, "answered 504");
        await MessageCopy.RefuseAsync(context, HttpStatusCode.GatewayTimeout, new TunnelFailure("http_response_timeout", $"the backend moved no byte for {waited}")).ConfigureAwait(false);
    }

    /// <summary>
    /// Copies an answer that came back to the waiting client. Only an answer <paramref name="fromPeer"/> has its
    /// <c>passage-tunnel-</c> fields read (compression, the real status); a backend's are dropped unread. With
    /// <paramref name="backend"/> set, the reads of the body are waits on the backend and may time out. A client that takes
    /// none of the body for <paramref name="receiverIdle"/> (when positive) has it cut off: a client that never reads would
    /// otherwise hold the answer's source (the link's stream, the backend's connection) for good.
    /// </summary>
    public static async Task CopyResponseAsync(HttpContext context, HttpResponseMessage response, bool compressResponse, bool fromPeer, ILogger logger, CancellationToken cancellationToken, BackendTimer? backend = null,
        TimeSpan receiverIdle = default)
    {
        cancellationToken = backend?.Token ?? cancellationToken;
        if (await RefusedAsInvalidAsync(context, response, logger).ConfigureAwait(false))
        {
            return;
        }
        if (fromPeer && MessageCopy.Single(response, TunnelHeaders.Refused) is { Length: > 0 } refusal)
        {
            Telemetry.TunnelMetrics.Refused(context, refusal);
        }
        var decompress = fromPeer && MessageCopy.Single(response, TunnelHeaders.Encoding) == TunnelHeaders.Brotli;
        var status = (int)response.StatusCode;
        if (fromPeer && MessageCopy.ParseLength(MessageCopy.Single(response, TunnelHeaders.Status)) is { } real and >= 200 and < 300)
        {
            // The real status decides whether the answer has content: a declined upgrade's 204 framed as a 200 got chunked
            // framing, on which Kestrel threw, and the application saw its connection reset.
            status = (int)real;
        }
        var compress = !decompress && compressResponse && HasContent(context, status) && response.Content.Headers.ContentEncoding.Count == 0;
        MessageCopy.CopyResponseHead(response, context.Response, keepContentLength: !decompress && !compress);
        context.Response.StatusCode = status;
        if (status == StatusCodes.Status408RequestTimeout && (HttpProtocol.IsHttp11(context.Request.Protocol) || HttpProtocol.IsHttp10(context.Request.Protocol)))
        {
            // A 408 says the request was given up, most often its body cut off (the server end's, whose HTTP/2 answer has no
            // Connection field, or the backend's, whose Connection is this hop's): the connection is closed after it (RFC 9110
            // §15.5.9), so that the application closes its end rather than leave Kestrel draining the rest until it resets it.
            context.Response.Headers.Connection = "close";
        }
        if (decompress && MessageCopy.ParseLength(MessageCopy.Single(response, TunnelHeaders.Length)) is { } length)
        {
            context.Response.ContentLength = length;
        }
        if (compress)
        {
            context.Response.Headers[TunnelHeaders.Encoding] = TunnelHeaders.Brotli;
            if (response.Content.Headers.ContentLength is { } original)
            {
                context.Response.Headers[TunnelHeaders.Length] = original.ToString(System.Globalization.CultureInfo.InvariantCulture);
            }
        }
        // Kestrel's HTTP/1.1 server cannot send trailers; where the answer may have some, Passage frames it itself.
        var chunked = FramesItself(context, status) ? new ChunkedWriteStream(context.Response.Body) : null;
        if (chunked is null && HasContent(context, status) && !context.Response.SupportsTrailers())
        {
            // The trailer fields are dropped here (an HTTP/1.0 application gets no chunked framing, RFC 9112 §7.1), so the
            // Trailer field that announces them goes too (RFC 9110 §6.6.2). Wherever trailers go on, it does.
            context.Response.Headers.Remove("Trailer");
        }

        BodyCopyResult result;
        try
        {
            var raw = await response.Content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
            raw = backend?.WatchBackend(raw) ?? raw;
            var body = decompress ? new BrotliStream(raw, CompressionMode.Decompress) : raw;
            await using (body.ConfigureAwait(false))
            {
                // The head goes out now: a response that streams slowly must not wait for its first chunk.
                await context.Response.StartAsync(cancellationToken).ConfigureAwait(false);
                // An answer that may have no content (a 205 whose backend sent some anyway: Kestrel threw on its first byte
                // and the application got a 502) has what came read to its end and dropped.
                var target = !HasContent(context, status) ? Stream.Null : chunked ?? context.Response.Body;
                if (compress)
                {
                    var brotli = new BrotliStream(target, CompressionLevel.Fastest, leaveOpen: true);
                    await using (brotli.ConfigureAwait(false))
                    {
                        result = await BodyCopier.CopyAsync(body, brotli, cancellationToken, receiverIdle: receiverIdle).ConfigureAwait(false);
                    }
                }
                else
                {
                    result = await BodyCopier.CopyAsync(body, target, cancellationToken, receiverIdle: receiverIdle).ConfigureAwait(false);
                }
                if (result == BodyCopyResult.Completed && decompress)
                {
                    // Brotli knows where its data ends and stops reading there; the trailers come after.
                    result = await ReadToEndAsync(raw, cancellationToken).ConfigureAwait(false);
                }
                if (result == BodyCopyResult.Completed && chunked is not null)
                {
                    await chunked.CompleteAsync(MessageCopy.TrailerLines(response), cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (BodyCopier.IsIoFailure(e))
        {
            CutOff(context, backend, logger, e.GetType().Name);
            return;
        }
        if (result != BodyCopyResult.Completed)
        {
            CutOff(context, backend, logger, result.ToString());
            return;
        }
        if (chunked is null)
        {
            MessageCopy.CopyTrailers(response, context.Response);
        }
    }

    /// <summary>Answers 502 for an answer <see cref="MessageCopy.InvalidAnswer"/> refuses: true when it did.</summary>
    public static async Task<bool> RefusedAsInvalidAsync(HttpContext context, HttpResponseMessage response, ILogger logger, bool switched = false)
    {
        if (MessageCopy.InvalidAnswer(response, switched) is not { } invalid)
        {
            return false;
        }
        TunnelLog.AnswerRefusedRationed(logger, invalid.ErrorType, invalid.Details);
        await MessageCopy.RefuseAsync(context, HttpStatusCode.BadGateway, invalid).ConfigureAwait(false);
        return true;
    }

    /// <summary>The answer broke off after it began: the client must see it cut off, not whole.</summary>
    public static void CutOff(HttpContext context, BackendTimer? backend, ILogger logger, string why)
    {
        if (backend is { Expired: true })
        {
            TunnelLog.BackendTimedOutRationed(logger, Configuration.Duration.Format(backend.Limit), "answer cut off");
        }
        TunnelLog.RequestFailed(logger, "response body", why);
        context.Abort();
    }

    /// <summary>Reads <paramref name="stream"/> to its end, which must hold nothing more.</summary>
    private static async Task<BodyCopyResult> ReadToEndAsync(Stream stream, CancellationToken cancellationToken)
    {
        var rest = new byte[1];
        return await stream.ReadAsync(rest, cancellationToken).ConfigureAwait(false) == 0 ? BodyCopyResult.Completed : BodyCopyResult.SourceFailed;
    }

    /// <summary>
    /// Whether the answer has content (RFC 9110 §6.4.1: none to HEAD, nor with a 1xx, 204 or 304; and a 205 may generate
    /// none, RFC 9110 §15.3.6, though its framing, RFC 9112 §6.3, may say it came with some).
    /// </summary>
    private static bool HasContent(HttpContext context, int status) =>
        !HttpMethods.IsHead(context.Request.Method) && status is >= 200 and not 204 and not 205 and not 304;

    /// <summary>
    /// Whether the answer goes out in Passage's own chunked framing: over HTTP/1.1, with content, and either of
    /// unknown length or announcing trailers (RFC 9110 §6.6.2; a length would leave no room for them, so it is
    /// dropped, RFC 9112 §6.1).
    /// </summary>
    private static bool FramesItself(HttpContext context, int status)
    {
        if (!HttpProtocol.IsHttp11(context.Request.Protocol) || !HasContent(context, status))
        {
            return false;
        }
        var response = context.Response;
        if (response.ContentLength is not null && !TunnelHeaders.DeclaresTrailers(response.Headers))
        {
            return false;
        }
        response.ContentLength = null;
        response.Headers.TransferEncoding = "chunked";
        return true;
    }
}
