using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// One HTTP/1.1 CONNECT on a connection Passage owns (TLS it terminated, or a plain socket):
/// <code>
///  read the request head (head timeout, size bound) → credentials → open the tunnel
///  → "200 Connection established" → pump (bytes the client sent after the head go first)
///  any failure before the 200: a status with Proxy-Status, "Connection: close", then close
/// </code>
/// The head is read by Passage rather than Kestrel, so the tunnel's bytes run on the byte pump
/// (and zero-copy where both ends are plain sockets).
/// </summary>
internal sealed class Http1ConnectSession(
    TunnelOpener opener, TunnelPump tunnels, ConnectOptions options, ILogger logger, RelayMetrics metrics, TimeProvider time)
{
    private readonly Http1ParseLimits _headLimits = new() { MaxHeadBytes = options.MaxRequestHeadBytes };

    /// <summary>
    /// Serves one CONNECT up to its tunnel's start, and owns <paramref name="client"/>;
    /// <paramref name="readSoFar"/> holds bytes already read from the client (its buffer is the session's from here), and
    /// <paramref name="headDeadline"/> (when it can fire) the deadline those were read under, which the
    /// rest of the head keeps (else the head timeout starts now). True: the tunnel runs and reports its
    /// end to <paramref name="end"/>; false: the connection has ended (refused or gone).
    /// </summary>
    public async Task<bool> StartAsync(
        IDuplexConnection client, SocketConnection socket, IPEndPoint? remote, long id, IConnectionEnd end, CancellationToken closeAll,
        ReadSoFar? readSoFar = null, CancellationToken headDeadline = default)
    {
        var started = false;
        try
        {
            var opened = await OpenAsync(client, socket, remote, id, closeAll, readSoFar, headDeadline).ConfigureAwait(false);
            if (opened.Upstream is { } upstream)
            {
                started = await tunnels.StartAsync(client, upstream, opened.Lease, opened.Early, id, end, closeAll).ConfigureAwait(false);
            }
            return started;
        }
        finally
        {
            if (!started)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// The first bytes of a request head, read by whoever took the connection: <paramref name="Length"/> bytes at the
    /// start of <paramref name="Buffer"/>, which was rented from <see cref="ArrayPool{T}.Shared"/> and holds at least
    /// <c>MaxRequestHeadBytes</c>.
    /// </summary>
    internal readonly record struct ReadSoFar(byte[] Buffer, int Length);

    /// <summary>An open tunnel's upstream and slot (the caller owns both) and the client's bytes read past the head.</summary>
    private readonly record struct Opened(SocketConnection? Upstream, TunnelLimiter.Lease? Lease, byte[] Early);

    /// <summary>
    /// Reads the head, checks it, opens the tunnel and answers 200; every refusal is answered here
    /// and comes back without an upstream.
    /// </summary>
    private async ValueTask<Opened> OpenAsync(
        IDuplexConnection client, SocketConnection socket, IPEndPoint? remote, long id, CancellationToken closeAll, ReadSoFar? readSoFar, CancellationToken headDeadline)
    {
        byte[]? buffer = readSoFar?.Buffer ?? ArrayPool<byte>.Shared.Rent(options.MaxRequestHeadBytes);
        try
        {
            var (head, failure, detail, filled) = await ReadHeadAsync(client, buffer, readSoFar?.Length ?? 0, headDeadline, closeAll).ConfigureAwait(false);
            if (head is not { Status: Http1ParseStatus.Complete, Request: not null })
            {
                if (failure is { } refusal)
                {
                    await RefuseAsync(client, refusal, detail, metrics, time, logger, id).ConfigureAwait(false);
                }
                else
                {
                    // Gone before a whole head: counted, as pass-through counts a client gone before its hello.
                    metrics.Refused(ConnectRelay.FrontDoor, RefusalReason.ClientClosed);
                }
                return default;
            }

            var request = head.Value.Request;
            // The credentials are read where they lie in the head, still in the buffer.
            if (opener.Authenticate(request.ProxyAuthorization is { } credentials ? buffer.AsSpan(0, filled)[credentials] : default) is { } denied)
            {
                await RefuseAsync(client, denied, "credentials required", metrics, time, logger, id).ConfigureAwait(false);
                return default;
            }
            // A request that comes once the relay has begun to stop, or whose destination answered after that, does not
            // start a tunnel the drain deadline would cut: it is told the relay is stopping. A destination already dialed
            // is let go first, before the answer's lingering close.
            if (tunnels.IsStopping)
            {
                await RefuseAsync(client, RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail, metrics, time, logger, id).ConfigureAwait(false);
                return default;
            }
            TunnelLog.Requested(logger, id, remote?.Address, request.Host, request.Port);
            TunnelOpening opening;
            using (var left = CancellationTokenSource.CreateLinkedTokenSource(closeAll))
            {
                var dialing = opener.OpenAsync(request.Host, request.Port, remote?.Address, left.Token);
                if (dialing.IsCompleted)
                {
                    // Reached at once (a literal address connected by the time connect(2) returned, as on a loopback or a
                    // near network): no wait for the client to leave. The watch costs about 100 µs of CPU a tunnel
                    // (bench/connect/run: 300 against 190 ms per 1000 setups), the wait and its cancellation's hop to
                    // the thread pool, not the exception it ends in (a cancellation without one measured the same).
                    opening = dialing.Result;
                }
                else
                {
                    using var dialed = new CancellationTokenSource();
                    var watching = WatchLeavingAsync(socket, sentBehind: filled > head.Value.HeadLength, left, dialed.Token);
                    try
                    {
                        opening = await dialing.ConfigureAwait(false);
                    }
                    finally
                    {
                        // Its wait given up before the client's connection is read by anyone else.
                        await dialed.CancelAsync().ConfigureAwait(false);
                        await watching.ConfigureAwait(false);
                    }
                }
                if (opening.Upstream is null && left.IsCancellationRequested && !closeAll.IsCancellationRequested)
                {
                    // Gone while its destination was dialed: nobody to answer (a dial that ended otherwise is answered).
                    metrics.Refused(ConnectRelay.FrontDoor, RefusalReason.ClientClosed);
                    return default;
                }
            }
            if (opening.Upstream is not { } upstream)
            {
                await RefuseAsync(client, opening.Refusal, opening.Detail, metrics, time, logger, id).ConfigureAwait(false);
                return default;
            }
            if (tunnels.IsStopping)
            {
                await upstream.DisposeAsync().ConfigureAwait(false);
                opening.Lease?.Dispose();
                await RefuseAsync(client, RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail, metrics, time, logger, id).ConfigureAwait(false);
                return default;
            }

            var handedOver = false;
            try
            {
                await client.WriteAsync(Http1Response.Established(request.Version), closeAll).ConfigureAwait(false);
                // A client may send its first tunnel bytes (a ClientHello) right behind the head.
                var headLength = (int)head.Value.HeadLength;
                // Keep those bytes, not the head buffer: an idle tunnel holds no buffer.
                var early = buffer.AsSpan(headLength, filled - headLength).ToArray();
                ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // it held the head, and with it any Proxy-Authorization
                buffer = null;
                handedOver = true;
                return new Opened(upstream, opening.Lease, early);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // Gone before its 200 went out (or the relay is stopping): no tunnel started.
                metrics.Refused(ConnectRelay.FrontDoor, closeAll.IsCancellationRequested ? RefusalReason.ShuttingDown : RefusalReason.ClientClosed);
                return default;
            }
            finally
            {
                if (!handedOver)
                {
                    opening.Lease?.Dispose();
                    await upstream.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // it held the head, and with it any Proxy-Authorization
            }
        }
    }

    /// <summary>
    /// Cancels <paramref name="left"/> when the client leaves while its destination is dialed: it resets its connection, or
    /// ends its side with nothing sent behind its head, as an HTTP/2 client that resets its stream ends the dial, rather than
    /// holding its slot and the dial (which would still reach the destination) until the connect timeout. Bytes waiting
    /// behind the head, or read with it (<paramref name="sentBehind"/>), leave the dial running: such a client may have
    /// ended only its sending, and a TLS client's close_notify is bytes too, so that only its end without one, or its reset,
    /// is seen. Waits for the socket without reading from it, until <paramref name="dialed"/>.
    /// </summary>
    private static async Task WatchLeavingAsync(SocketConnection socket, bool sentBehind, CancellationTokenSource left, CancellationToken dialed)
    {
        try
        {
            if (await socket.PeekByteAsync(dialed).ConfigureAwait(false) < 0 && !sentBehind)
            {
                await left.CancelAsync().ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // The dial ended first.
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Reset, or closed under it (the relay aborting the connection): gone either way.
            await left.CancelAsync().ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Reads until the head is complete, by <paramref name="headDeadline"/> if it can fire, else within
    /// the head timeout from now. On failure the head is null and the refusal says what to answer
    /// (null: the client left, nothing to answer).
    /// </summary>
    private async ValueTask<(Http1ParseResult? Head, RefusalReason? Failure, string Detail, int Filled)> ReadHeadAsync(
        IDuplexConnection client, byte[] buffer, int filled, CancellationToken headDeadline, CancellationToken closeAll)
    {
        Deadline? deadline = null;
        if (!headDeadline.CanBeCanceled)
        {
            deadline = new Deadline(options.RequestHeadTimeout, time, closeAll);
            headDeadline = deadline.Value.Token;
        }
        try
        {
            var size = Math.Min(buffer.Length, options.MaxRequestHeadBytes);
            // Each parse resumes where the last stopped: a head trickled in small reads is looked at once, not once per read.
            var progress = default(Http1ParseProgress);
            while (true)
            {
                if (filled > 0)
                {
                    var result = Http1ConnectParser.Parse(new ReadOnlySequence<byte>(buffer, 0, filled), _headLimits, ref progress);
                    switch (result.Status)
                    {
                        case Http1ParseStatus.Complete:
                            return (result, null, "", filled);
                        case Http1ParseStatus.Error:
                            return (null, result.Refusal, result.Detail ?? "", filled);
                        default:
                            if (filled >= size)
                            {
                                return (null, RefusalReason.HeadTooLarge, "request head too large", filled);
                            }
                            break;
                    }
                }

                int read;
                try
                {
                    read = await client.ReadAsync(buffer.AsMemory(filled, size - filled), headDeadline).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return closeAll.IsCancellationRequested
                        ? (null, RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail, filled)
                        : (null, RefusalReason.RequestHeadTimeout, "request head not received in time", filled);
                }
                catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
                {
                    return (null, null, "", filled);
                }
                if (read == 0)
                {
                    return (null, null, "", filled);
                }
                filled += read;
            }
        }
        finally
        {
            deadline?.Dispose();
        }
    }

    /// <summary>Answers with the refusal's status and Proxy-Status, then closes gracefully.</summary>
    public static async Task RefuseAsync(IDuplexConnection client, RefusalReason reason, string detail, RelayMetrics metrics, TimeProvider time, ILogger? logger = null, long id = 0)
    {
        metrics.Refused(ConnectRelay.FrontDoor, reason);
        if (logger is not null)
        {
            TunnelLog.Refused(logger, id, reason.Name(), detail);
        }
        var answer = new ArrayBufferWriter<byte>(256);
        Http1Response.Error(answer, reason, detail);
        await LingeringClose.CloseAsync(client, answer.WrittenMemory, time).ConfigureAwait(false);
    }
}
