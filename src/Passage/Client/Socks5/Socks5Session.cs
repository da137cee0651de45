using System.Buffers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Passage.Client.HttpProxy;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Transport;
using static Passage.Client.Socks5.Socks5Protocol;

namespace Passage.Client.Socks5;

/// <summary>
/// One SOCKS5 connection (RFC 1928): method selection, optional username/password (RFC 1929),
/// a CONNECT request whose host goes to the relay unresolved, the reply, then the pump. A connection refused (another
/// protocol, no method or credentials it may use, a request it may not make, no tunnel, no request in time) is counted in
/// <paramref name="metrics"/> by the reason the HTTP proxy would give: one that merely leaves is not.
/// </summary>
internal sealed class Socks5Session(PassageClient client, LocalProxyOptions options, RelayMetrics metrics, PumpOptions pump, TimeProvider time)
{
    private const string FrontDoor = "socks";

    public async Task HandleAsync(Socket socket, long id, CancellationToken closeAll)
    {
        socket.NoDelay = true;
        await using var app = new SocketConnection(socket);
        try
        {
            if (await HandshakeAsync(app, closeAll).ConfigureAwait(false) is not { } request)
            {
                return;
            }
            var (host, port, early) = request;

            // The handshake timeout is the application's time to ask; the relay's answer takes what it takes (its
            // connect timeout bounds it, and the client's answer timeout a relay that does not answer), and the reply
            // goes out whenever it comes: a connect timeout at the relay is 0x06. An application that leaves meanwhile
            // ends the wait (see TunnelOpening).
            (var tunnel, var failure, early) = await TunnelOpening.OpenAsync(client, host, port, app, early, closeAll).ConfigureAwait(false);
            if (failure is not null)
            {
                await RefuseAsync(app, failure.Failure.Http(), ReplyBytes(failure.Failure.Socks())).ConfigureAwait(false);
                return;
            }
            if (tunnel is null)
            {
                // The application left before its reply (see TunnelOpening): should it have only half-closed, it
                // hears that it has no tunnel; for one gone the reply is lost, with nothing else.
                await LingeringClose.CloseAsync(app, ReplyBytes(Reply.GeneralFailure), time).ConfigureAwait(false);
                return;
            }
            await using var upstream = new StreamConnection(tunnel);
            await app.WriteAsync(ReplyBytes(Reply.Succeeded), closeAll).ConfigureAwait(false);
            await BytePump.RunAsync(app, upstream, pump, early, closeAll).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The application went away or was too slow; nothing to answer.
        }
    }

    /// <summary>
    /// Method selection, authentication and the request, within the handshake timeout: the CONNECT target and
    /// the bytes the application sent after its request, or null when it got its answer (or left) already.
    /// </summary>
    private async Task<(string Host, int Port, byte[] Early)?> HandshakeAsync(SocketConnection app, CancellationToken closeAll)
    {
        using var deadline = new Deadline(options.HandshakeTimeout, time, closeAll);
        var buffer = ArrayPool<byte>.Shared.Rent(1024);
        try
        {
            var requireUser = options.SocksUsers.Count > 0;
            var filled = 0;

            // Method selection (RFC 1928 §3).
            bool offered = false;
            int used = 0;
            (filled, var status) = await ReadUntilAsync(app, buffer, filled, seq => ParseGreeting(seq, requireUser ? MethodUserPass : MethodNoAuth, out offered, out used), deadline.Token).ConfigureAwait(false);
            if (status != ParseStatus.Complete)
            {
                if (status == ParseStatus.Invalid)
                {
                    // Not SOCKS5: a SOCKS4 client hears that its request is rejected, and an HTTP one why, rather than a
                    // bare close (or a reset, the rest of its request unread).
                    await RefuseAsync(app, RefusalReason.MalformedRequest, AnswerToAnotherProtocol(buffer[0])).ConfigureAwait(false);
                }
                return null;
            }
            filled = Consume(buffer, filled, used);
            if (!offered)
            {
                await RefuseAsync(app, RefusalReason.AuthenticationRequired, new byte[] { Socks5Protocol.Version, MethodNoneAcceptable }).ConfigureAwait(false);
                return null;
            }
            await app.WriteAsync(new[] { Socks5Protocol.Version, requireUser ? MethodUserPass : MethodNoAuth }, deadline.Token).ConfigureAwait(false);

            if (requireUser)
            {
                Range user = default, password = default;
                (filled, status) = await ReadUntilAsync(app, buffer, filled, seq => ParseUserPass(seq, out user, out password, out used), deadline.Token).ConfigureAwait(false);
                if (status == ParseStatus.Incomplete)
                {
                    return null;
                }
                // Another sub-negotiation version is answered as a failure too (RFC 1929 §2: the server closes after it).
                var ok = status == ParseStatus.Complete && LocalUsers.Admits(options.SocksUsers, buffer.AsSpan(user), buffer.AsSpan(password));
                // Checked where they lie, then cleared before what follows them takes their place.
                CryptographicOperations.ZeroMemory(buffer.AsSpan(0, status == ParseStatus.Complete ? used : filled));
                filled = status == ParseStatus.Complete ? Consume(buffer, filled, used) : 0;
                if (!ok)
                {
                    await RefuseAsync(app, RefusalReason.AuthenticationRequired, new byte[] { 1, 1 }).ConfigureAwait(false);
                    return null;
                }
                await app.WriteAsync(new byte[] { 1, 0 }, deadline.Token).ConfigureAwait(false);
            }

            // The request (RFC 1928 §4).
            string host = "";
            int port = 0;
            var error = Reply.GeneralFailure;
            (filled, status) = await ReadUntilAsync(app, buffer, filled, seq => ParseRequest(seq, out host, out port, out used, out error), deadline.Token).ConfigureAwait(false);
            if (status == ParseStatus.Invalid)
            {
                await RefuseAsync(app, error == Reply.CommandNotSupported ? RefusalReason.MethodNotAllowed : RefusalReason.MalformedRequest, ReplyBytes(error))
                    .ConfigureAwait(false);
            }
            return status == ParseStatus.Complete ? (host, port, buffer.AsMemory(used, filled - used).ToArray()) : null;
        }
        catch (OperationCanceledException) when (deadline.Token.IsCancellationRequested && !closeAll.IsCancellationRequested)
        {
            // No request in time: SOCKS has no answer for it before a request, so the connection is only closed.
            metrics.Refused(FrontDoor, RefusalReason.RequestHeadTimeout);
            return null;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // it held the password
        }
    }

    private Task RefuseAsync(IDuplexConnection app, RefusalReason reason, ReadOnlyMemory<byte> answer)
    {
        metrics.Refused(FrontDoor, reason);
        return LingeringClose.CloseAsync(app, answer, time);
    }

    /// <summary>
    /// What an application that spoke another protocol first (<paramref name="first"/>, its first byte) is answered: SOCKS4's
    /// "rejected" to SOCKS4 (and 4a); to what starts as an HTTP request line does (a method is a token, and every
    /// registered one is in capitals: an application pointed at this port for an HTTP proxy), a 400 saying what this port
    /// is; nothing to anything else.
    /// </summary>
    internal static ReadOnlyMemory<byte> AnswerToAnotherProtocol(byte first) => first switch
    {
        Socks4Version => Socks4Rejected,
        >= (byte)'A' and <= (byte)'Z' => NotAnHttpProxy,
        _ => ReadOnlyMemory<byte>.Empty,
    };

    /// <summary>The 400 an HTTP request sent to this port gets.</summary>
    private static readonly ReadOnlyMemory<byte> NotAnHttpProxy =
        HttpProxySession.Answer(RefusalReason.MalformedRequest, "this is a SOCKS5 port, not an HTTP proxy");

    private static async Task<(int Filled, ParseStatus Status)> ReadUntilAsync(
        IDuplexConnection connection, byte[] buffer, int filled, Func<ReadOnlySequence<byte>, ParseStatus> parse, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (filled > 0)
            {
                var status = parse(new ReadOnlySequence<byte>(buffer, 0, filled));
                if (status != ParseStatus.Incomplete)
                {
                    return (filled, status);
                }
            }
            if (filled == buffer.Length)
            {
                return (filled, ParseStatus.Invalid);
            }
            var read = await connection.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return (filled, ParseStatus.Incomplete);
            }
            filled += read;
        }
    }

    /// <summary>
    /// Drops the first <paramref name="used"/> of <paramref name="filled"/> bytes: moves the rest up to the start and clears
    /// the places they leave, which would otherwise keep a copy of the last bytes moved. Those can be the RFC 1929
    /// request, when it came in the greeting's read: its password's last bytes stayed behind the request, out of reach of
    /// its clearing, until the handshake ended. Returns the bytes left.
    /// </summary>
    internal static int Consume(byte[] buffer, int filled, int used)
    {
        Buffer.BlockCopy(buffer, used, buffer, 0, filled - used);
        CryptographicOperations.ZeroMemory(buffer.AsSpan(filled - used, used));
        return filled - used;
    }
}
