using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// One connection to the local HTTP proxy: a CONNECT (answered 200, then relayed) or a plain
/// <c>http://</c> request in absolute-form (forwarded through a tunnel to the origin in origin-form,
/// one request per tunnel: its body goes with it, and anything sent after that is dropped, see
/// <see cref="RequestBodyConnection"/>; the origin's answer comes back without this hop's fields, and the
/// connection ends with it, see <see cref="OriginAnswerConnection"/>). A failure answers with a status and a Proxy-Status.
/// An OPTIONS or TRACE whose Max-Forwards is 0 goes no further: this proxy answers it (RFC 9110 §7.6.2).
/// </summary>
internal sealed class HttpProxySession(PassageClient client, LocalProxyOptions options, RelayMetrics metrics, PumpOptions pump, TimeProvider time)
{
    public async Task HandleAsync(Socket socket, long id, CancellationToken closeAll)
    {
        socket.NoDelay = true;
        var app = new SocketConnection(socket);
        // It holds the head until the tunnel is open; any Proxy-Authorization in it is cleared as soon as it was checked.
        var buffer = new HeadBuffer();
        try
        {
            var (headRange, filled, failure) = await ReadHeadAsync(app, buffer, closeAll).ConfigureAwait(false);
            if (failure is { } refusal)
            {
                // Whatever the head held (credentials perhaps) is not needed for the refusal, which lingers.
                buffer.Return();
                await Refuse(app, refusal.Reason, refusal.Detail).ConfigureAwait(false);
                return;
            }
            var (headStart, headLength) = headRange.GetOffsetAndLength(filled);
            if (headLength == 0)
            {
                return; // The application left before sending a whole head.
            }
            var headEnd = headStart + headLength;
            var head = ProxyRequestHead.Parse(buffer.Bytes.AsSpan(headRange), out var reason, out var error);
            if (head is null)
            {
                // A head refused for a later line may hold valid credentials: cleared now, not after the lingering refusal.
                buffer.Return();
                await Refuse(app, reason, error ?? "malformed request").ConfigureAwait(false);
                return;
            }
            var admitted = options.HttpUsers.Count == 0 || Admitted(buffer.Bytes.AsSpan(headRange), head);
            foreach (var credentials in head.Credentials)
            {
                // Needed for that check alone: not left in the buffer while the tunnel opens, or the refusal lingers.
                CryptographicOperations.ZeroMemory(buffer.Bytes.AsSpan(headRange)[credentials]);
            }
            if (!admitted)
            {
                // Missing and wrong credentials alike: the application learns nothing of which.
                await Refuse(app, RefusalReason.AuthenticationRequired, "credentials required").ConfigureAwait(false);
                return;
            }
            if (head.MaxForwards == 0)
            {
                // RFC 9110 §7.6.2: this proxy is the request's final recipient. An OPTIONS learns what it does itself. A TRACE
                // is refused rather than echoed: the echo would be of a head whose credentials are cleared as soon as checked,
                // and nothing of it is kept to echo.
                buffer.Return();
                if (head.Method == "TRACE")
                {
                    metrics.Refused("http-proxy", RefusalReason.MethodNotAllowed);
                    await LingeringClose.CloseAsync(app, TraceAnswer, time).ConfigureAwait(false);
                }
                else
                {
                    await LingeringClose.CloseAsync(app, OptionsAnswer, time).ConfigureAwait(false);
                }
                return;
            }

            byte[] rest = buffer.Bytes.AsSpan(headEnd, filled - headEnd).ToArray();
            Stream? tunnel;
            PassageTunnelException? unopened = null;
            if (head.IsConnect)
            {
                // An application that leaves while its tunnel opens ends the opening (see TunnelOpening). Not a request
                // forwarded whole: its application may end its side behind it, as an HTTP/1.0 one may, and wait for the answer.
                (tunnel, unopened, rest) = await TunnelOpening.OpenAsync(client, head.Host, head.Port, app, rest, closeAll).ConfigureAwait(false);
            }
            else
            {
                try
                {
                    tunnel = await client.ConnectAsync(head.Host, head.Port, closeAll).ConfigureAwait(false);
                }
                catch (PassageTunnelException e)
                {
                    (tunnel, unopened) = (null, e);
                }
            }
            buffer.Return();
            if (unopened is not null)
            {
                await Refuse(app, unopened.Failure.Http(), unopened.Details).ConfigureAwait(false);
                return;
            }
            if (tunnel is null)
            {
                // The application left before its answer: should it have only half-closed, it hears why it has no tunnel; for
                // one gone the answer is lost, with nothing else. Not a refusal: nothing is counted.
                await LingeringClose.CloseAsync(app, LeftBeforeTunnel, time).ConfigureAwait(false);
                return;
            }

            await using var upstream = new StreamConnection(tunnel);
            if (head.IsConnect)
            {
                await app.WriteAsync(Http1Response.Established(System.Net.HttpVersion.Version11), closeAll).ConfigureAwait(false);
                await BytePump.RunAsync(app, upstream, pump, rest, closeAll).ConfigureAwait(false);
            }
            else
            {
                // Only this request's body follows its head to the origin: what comes after it is not this tunnel's. Only the
                // origin's answer comes back, and the application's connection ends with it.
                // Bytes are counted by the two ends as they are delivered, not by the pump: each end drops writes at times (the
                // rest of a body after the tunnel broke, the origin's answer to a refused request), which are not delivered.
                var claim = new AnswerClaim();
                await using var request = new RequestBodyConnection(app, rest, new FramedBody(head.Framing, head.ContentLength, head.Forwards), claim, pump.Tally);
                await using var answer = new OriginAnswerConnection(upstream, head, claim, pump.Tally, time);
                await BytePump.RunAsync(request, answer, pump with { Tally = null }, head.ToOriginForm(), closeAll).ConfigureAwait(false);
                if (answer.Refusal is { } refused)
                {
                    metrics.Refused("http-proxy", refused);
                }
                else if (request.Refusal is { } malformed)
                {
                    // The body's framing broke before the origin answered: the tunnel was reset, and the application hears why.
                    await Refuse(app, RefusalReason.MalformedRequest, malformed).ConfigureAwait(false);
                    return;
                }
                // The tunnel ends as a whole once the origin has ended its side too. The request said Connection: close and
                // its answer is whole, so an origin that keeps its side open is waited for briefly, as a lingering close
                // waits for its peer, not until the idle timeout: then the tunnel's disposal ends it, whatever the
                // application still sends. Meanwhile the application's connection, its answer out whole, closes gracefully
                // (an answer cut short reset it already), taking what is left of its body until the idle timeout.
                using var deadline = new Deadline(pump.IdleTimeout, time, closeAll);
                using var originEnd = new Deadline(LingeringClose.Deadline, time, closeAll);
                var closing = request.Answered ? request.CloseAnsweredAsync(time, deadline.Token) : Task.CompletedTask;
                try
                {
                    await answer.DrainAsync(originEnd.Token).ConfigureAwait(false);
                }
                finally
                {
                    try
                    {
                        // Not held for the rest of the application's body, which goes nowhere.
                        await upstream.DisposeAsync().ConfigureAwait(false);
                    }
                    finally
                    {
                        // Never disposed under it (the tunnel's drain fails when the pump reset the tunnel).
                        await closing.ConfigureAwait(false);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The application went away.
        }
        finally
        {
            buffer.Return();
            await app.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>What an application that ended its side before its CONNECT's tunnel opened, with nothing sent behind it, hears.</summary>
    private static readonly ReadOnlyMemory<byte> LeftBeforeTunnel =
        Answer(RefusalReason.MalformedRequest, "the application ended its side before its tunnel opened");

    /// <summary>
    /// This proxy's answer to an OPTIONS it is the final recipient of (Max-Forwards: 0): what it does itself, opening
    /// tunnels and answering this (every other method goes on to the origin, whatever its Max-Forwards).
    /// </summary>
    private static readonly byte[] OptionsAnswer = Encoding.ASCII.GetBytes($"HTTP/1.1 200 OK\r\nAllow: {Allowed}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");

    /// <summary>What this proxy does itself when it is a request's final recipient (Max-Forwards: 0).</summary>
    private const string Allowed = "CONNECT, OPTIONS";

    /// <summary>
    /// This proxy's refusal of a TRACE it is the final recipient of: a 405 whose Allow tells the methods its OPTIONS answer
    /// tells (a refusal of <see cref="Answer"/> would say CONNECT alone, as the relay's does).
    /// </summary>
    private static readonly byte[] TraceAnswer = MethodNotAllowed("TRACE is not echoed by this proxy");

    private static byte[] MethodNotAllowed(string detail)
    {
        var answer = new ArrayBufferWriter<byte>(256);
        answer.Write("HTTP/1.1 405 Method Not Allowed\r\nProxy-Status: "u8);
        ProxyStatus.Write(answer, ProxyStatus.DefaultProxyName, RefusalReason.MethodNotAllowed.ProxyStatusErrorType(), detail);
        answer.Write(Encoding.ASCII.GetBytes($"\r\nAllow: {Allowed}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"));
        return answer.WrittenSpan.ToArray();
    }

    /// <summary>What a 407 of this proxy offers: Basic (RFC 7617), the only scheme it reads.</summary>
    private const string Challenge = "Basic realm=\"passage\", charset=\"UTF-8\"";

    /// <summary>
    /// Whether the request carries one <c>Proxy-Authorization</c> with the Basic credentials of one of
    /// <see cref="LocalProxyOptions.HttpUsers"/>, read from the <paramref name="bytes"/> of its head through buffers
    /// cleared after: neither the field value, nor its base64, nor the password becomes a string, which could not be.
    /// </summary>
    private bool Admitted(ReadOnlySpan<byte> bytes, ProxyRequestHead head)
    {
        if (head.Credentials is not [var field])
        {
            return false;
        }
        var value = bytes[field];
        var text = ArrayPool<char>.Shared.Rent(value.Length);
        Span<byte> decoded = stackalloc byte[Relay.Auth.ProxyCredentials.MaxBasicDecodedLength];
        try
        {
            // The head was read as UTF-8 (ProxyRequestHead.Parse), and the value holds no character past Latin-1.
            var length = Encoding.UTF8.GetChars(value, text);
            return Relay.Auth.ProxyCredentials.TryReadBasic(text.AsSpan(0, length), decoded, out var user, out var password)
                && LocalUsers.Admits(options.HttpUsers, decoded[user], decoded[password]);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(text.AsSpan()));
            ArrayPool<char>.Shared.Return(text);
            CryptographicOperations.ZeroMemory(decoded);
        }
    }

    private Task Refuse(IDuplexConnection app, RefusalReason reason, string detail)
    {
        metrics.Refused("http-proxy", reason);
        return LingeringClose.CloseAsync(app, Answer(reason, detail), time);
    }

    /// <summary>The answer the application gets when this proxy refuses, or answers for the origin: a status and a Proxy-Status.</summary>
    internal static ReadOnlyMemory<byte> Answer(RefusalReason reason, string detail)
    {
        var answer = new ArrayBufferWriter<byte>(256);
        Http1Response.Error(answer, reason, detail, challenge: Challenge);
        return answer.WrittenMemory;
    }

    /// <summary>
    /// Reads the request head, empty lines before it passed over, into <paramref name="buffer"/> (at most 64 KiB, as the
    /// origin's answer heads: large cookies take real request heads past 16 KiB): where it lies and how much was read; or
    /// the refusal to answer (too large: 431, too slow, a bare LF, not HTTP at all, a request line of another shape, refused as
    /// soon as it is whole), or with none when the application closed first (the
    /// range is empty then).
    /// </summary>
    private async Task<(Range Head, int Filled, (RefusalReason Reason, string Detail)? Failure)> ReadHeadAsync(IDuplexConnection app, HeadBuffer buffer, CancellationToken closeAll)
    {
        using var deadline = new Deadline(options.HandshakeTimeout, time, closeAll);
        HeadReader.Result read;
        try
        {
            read = await buffer.ReadAsync(app, skipEmptyLines: true, deadline.Token, RequestLineShaped).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!closeAll.IsCancellationRequested)
        {
            return (default, 0, (RefusalReason.RequestHeadTimeout, "request head not received in time"));
        }
        return read.Outcome switch
        {
            HeadReader.Outcome.Whole => (read.Start..read.End, read.Filled, null),
            HeadReader.Outcome.TooLarge => (default, read.Filled, (RefusalReason.HeadTooLarge, $"request head larger than {HeadBuffer.MaxSize / 1024} KiB")),
            HeadReader.Outcome.BareLf => (default, read.Filled, (RefusalReason.MalformedRequest, "a line of the request head ends in a bare LF")),
            HeadReader.Outcome.NotHttp => (default, read.Filled, (RefusalReason.MalformedRequest, "not an HTTP request: a control character in its first line")),
            HeadReader.Outcome.BadFirstLine => (default, read.Filled, RequestLineRefusal(buffer.Bytes.AsSpan(read.Start..read.End))),
            _ => (default, read.Filled, null),
        };
    }

    private static bool RequestLineShaped(ReadOnlySpan<byte> line) => ProxyRequestHead.ReadRequestLine(line, out _, out _) is not null;

    private static (RefusalReason, string) RequestLineRefusal(ReadOnlySpan<byte> line)
    {
        ProxyRequestHead.ReadRequestLine(line, out var reason, out var error);
        return (reason, error ?? "malformed request line");
    }
}
