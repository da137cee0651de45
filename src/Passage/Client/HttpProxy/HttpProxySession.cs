using System.Buffers;
using System.Net.Sockets;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// One connection to the local HTTP proxy: a CONNECT (answered 200, then relayed) or a plain
/// <c>http://</c> request in absolute-form (forwarded through a tunnel to the origin in origin-form,
/// one request per tunnel: its body goes with it, and anything sent after that is dropped, see
/// <see cref="RequestBodyConnection"/>). A failure answers with a status and a Proxy-Status.
/// </summary>
internal sealed class HttpProxySession(PassageClient client, LocalProxyOptions options, RelayMetrics metrics, PumpOptions pump, TimeProvider time)
{
    private const int MaxHead = 16 * 1024;

    public async Task HandleAsync(Socket socket, long id, CancellationToken closeAll)
    {
        socket.NoDelay = true;
        var app = new SocketConnection(socket);
        byte[]? buffer = ArrayPool<byte>.Shared.Rent(MaxHead);
        try
        {
            var (headLength, filled, failure) = await ReadHeadAsync(app, buffer, closeAll).ConfigureAwait(false);
            if (failure is { } refusal)
            {
                await Refuse(app, refusal.Reason, refusal.Detail).ConfigureAwait(false);
                return;
            }
            if (headLength < 0)
            {
                return; // The application left before sending a whole head.
            }
            var head = ProxyRequestHead.Parse(buffer.AsSpan(0, headLength), out var reason, out var error);
            if (head is null)
            {
                await Refuse(app, reason, error ?? "malformed request").ConfigureAwait(false);
                return;
            }

            Stream tunnel;
            try
            {
                tunnel = await client.ConnectAsync(head.Host, head.Port, closeAll).ConfigureAwait(false);
            }
            catch (PassageTunnelException e)
            {
                await Refuse(app, e.Failure.Http(), e.Failure.ToString()).ConfigureAwait(false);
                return;
            }

            await using var upstream = new StreamConnection(tunnel);
            byte[] rest = buffer.AsSpan(headLength, filled - headLength).ToArray();
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
            if (head.IsConnect)
            {
                await app.WriteAsync(Http1Response.Established(System.Net.HttpVersion.Version11), closeAll).ConfigureAwait(false);
                await BytePump.RunAsync(app, upstream, pump, rest, closeAll).ConfigureAwait(false);
            }
            else
            {
                // Only this request's body follows its head to the origin: what comes after it is not this tunnel's.
                var request = new RequestBodyConnection(app, rest, head.Framing, head.ContentLength, Answer(RefusalReason.OriginNoAnswer, "the origin closed without answering"));
                await BytePump.RunAsync(request, upstream, pump, head.ToOriginForm(), closeAll).ConfigureAwait(false);
                if (request.AnsweredForOrigin)
                {
                    metrics.Refused("http-proxy", RefusalReason.OriginNoAnswer);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The application went away.
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    private Task Refuse(IDuplexConnection app, RefusalReason reason, string detail)
    {
        metrics.Refused("http-proxy", reason);
        return LingeringClose.CloseAsync(app, Answer(reason, detail), time);
    }

    private static ReadOnlyMemory<byte> Answer(RefusalReason reason, string detail)
    {
        var answer = new ArrayBufferWriter<byte>(256);
        Http1Response.Error(answer, reason, detail);
        return answer.WrittenMemory;
    }

    /// <summary>
    /// Reads until the empty line: the head's length; or -1 with the refusal to answer (too large, too
    /// slow), or with none when the application closed first.
    /// </summary>
    private async Task<(int HeadLength, int Filled, (RefusalReason Reason, string Detail)? Failure)> ReadHeadAsync(IDuplexConnection app, byte[] buffer, CancellationToken closeAll)
    {
        using var deadline = new Deadline(options.HandshakeTimeout, time, closeAll);
        var filled = 0;
        var size = Math.Min(buffer.Length, MaxHead);
        while (true)
        {
            int read;
            try
            {
                read = await app.ReadAsync(buffer.AsMemory(filled, size - filled), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!closeAll.IsCancellationRequested)
            {
                return (-1, filled, (RefusalReason.RequestHeadTimeout, "request head not received in time"));
            }
            if (read == 0)
            {
                return (-1, filled, null);
            }
            var searchFrom = Math.Max(0, filled - 3);
            var scanFrom = filled;
            filled += read;
            var end = buffer.AsSpan(searchFrom, filled - searchFrom).IndexOf("\r\n\r\n"u8);
            var headEnd = end >= 0 ? searchFrom + end + 4 : filled;
            // A line ended by LF alone would never make the head end here, and would wait for the timeout: refused now,
            // as the relay refuses it (the bytes after the head are the body's, and may hold anything).
            for (var i = scanFrom; i < headEnd; i++)
            {
                if (buffer[i] == (byte)'\n' && (i == 0 || buffer[i - 1] != (byte)'\r'))
                {
                    return (-1, filled, (RefusalReason.MalformedRequest, "a line of the request head ends in a bare LF"));
                }
            }
            if (end >= 0)
            {
                return (headEnd, filled, null);
            }
            if (filled == size)
            {
                return (-1, filled, (RefusalReason.HeadTooLarge, "request head too large"));
            }
        }
    }
}
