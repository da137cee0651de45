using System.Buffers;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Configuration;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Passthrough;

/// <summary>
/// Serves one pass-through connection.
/// <code>
///  accept ─► read ClientHello (handshake timeout, size bound) ─► route by SNI ─► resolve + check
///         ─► dial the checked address (connect timeout) ─► pump (hello first, then both ways)
///  any refusal before the pump: a fatal TLS alert to the client, then close; nothing is dialed
///  unless a route matched and every resolved address passed the policy.
/// </code>
/// </summary>
internal sealed class PassthroughConnectionHandler : IRelayAccounting
{
    // Records add 5 bytes of header each; real clients send the hello in one or two records.
    private const int RecordOverheadAllowance = 2048;

    private readonly PassthroughOptions _options;
    private readonly RelayLimits _limits;
    private readonly UpstreamConnector _upstreams;
    private readonly ILogger _logger;
    private readonly RelayMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly SniRouteTable _routes;
    private readonly PumpOptions _pumpOptions;
    private readonly RouteBack _routeBack;

    // listening: the endpoints the relay listens on, once bound: a route back to them is refused (see RouteBack).
    public PassthroughConnectionHandler(
        PassthroughOptions options, RelayLimits limits, DestinationResolver resolver, ILogger logger, RelayMetrics metrics, TimeProvider time,
        Func<IReadOnlyList<IPEndPoint>> listening)
    {
        _options = options;
        _limits = limits;
        // A hop back in has read its hello within the handshake timeout of its accept, which comes right after the dial.
        _routeBack = new RouteBack(listening, time, limits.HandshakeTimeout + TimeSpan.FromSeconds(10));
        _upstreams = new UpstreamConnector(resolver, limits, logger, time, _routeBack);
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _routes = new SniRouteTable(options.Routes);
        _pumpOptions = limits.PumpOptions(time, metrics.Bytes);
    }

    /// <summary>Serves one connection up to its pump's start (see <see cref="ConnectionHandler"/>).</summary>
    public async Task<bool> HandleAsync(Socket clientSocket, long id, IConnectionEnd end, CancellationToken closeAll)
    {
        clientSocket.NoDelay = true;
        var client = new SocketConnection(clientSocket);
        var routed = await RouteAsync(client, id, closeAll).ConfigureAwait(false);
        if (routed.Upstream is not { } upstream)
        {
            await client.DisposeAsync().ConfigureAwait(false);
            return false;
        }
        // The hello's pooled buffer is the pump's from here: it gives it back once the hello is forwarded.
        new RelayedConnection(client, upstream, slot: null, this, end, id).Start(_pumpOptions, routed.Hello, closeAll, pooledPreamble: true);
        return true;
    }

    /// <inheritdoc />
    void IRelayAccounting.Relayed(long id, PumpResult relayed)
    {
        _metrics.Relayed(PassthroughRelay.FrontDoor, relayed);
        PassthroughRelay.Log.Closed(_logger, id, relayed.End, relayed.FailedSide, relayed.ClientToUpstreamBytes, relayed.UpstreamToClientBytes);
    }

    /// <summary>
    /// A dialed upstream (the caller owns it) and the hello to send it first, in a buffer rented from the shared
    /// pool (the caller's too); no upstream and no hello when refused.
    /// </summary>
    private readonly record struct Routed(SocketConnection? Upstream, ReadOnlyMemory<byte> Hello);

    /// <summary>Reads the ClientHello, routes it and dials; a refusal is answered here.</summary>
    private async Task<Routed> RouteAsync(SocketConnection client, long id, CancellationToken closeAll)
    {
        if (_logger.IsEnabled(LogLevel.Debug))
        {
            // Asking a socket for its peer caches the address objects on it for its life: only when logged.
            PassthroughRelay.Log.Accepted(_logger, id, client.Socket.RemoteEndPoint);
        }
        var hello = await ReadClientHelloAsync(client, closeAll).ConfigureAwait(false);
        if (hello.Refusal is null && _routeBack.AnyNoted && _routeBack.CameFromOwnDial(client.Socket))
        {
            // This relay dialed itself (see RouteBack): the hop ends here, and the client gets this refusal's alert
            // through the hop before.
            BytePump.ReturnPooled(hello.Bytes);
            hello = Hello.Refused(RefusalReason.DestinationProhibited, "a route back to this relay");
        }
        if (hello.Refusal is { } refused)
        {
            await RefuseAsync(client, id, refused, hello.Detail, hello.Alert).ConfigureAwait(false);
            return default;
        }
        // The hello's buffer is rented: it goes on with a dialed upstream, or back to the pool before a refusal
        // is answered (which may linger).
        RefusalReason refusal;
        string? detail = null;
        var handedOn = false;
        try
        {
            HostPort? target = _options.Upstream;
            // A route without an upstream name dials the name the client's hello gave.
            var clientNamed = false;
            if (target is null && hello.ServerName is not null && _routes.Match(hello.ServerName) is { } route)
            {
                target = route.TargetFor(hello.ServerName);
                clientNamed = route.Upstream is null;
            }
            if (target is null)
            {
                // Without a name, the parser's note says why (an IP literal ignored, a server_name without a host_name):
                // "no server name" alone reads as a client that sent none.
                (refusal, detail) = hello.ServerName is null ? (RefusalReason.NoServerName, hello.Detail) : (RefusalReason.NoRoute, null);
            }
            else
            {
                var destination = target.Value;
                var reached = await _upstreams.ConnectAsync(destination, closeAll, clientNamed).ConfigureAwait(false);
                if (reached.Connection is { } upstream)
                {
                    if (_logger.IsEnabled(LogLevel.Debug))
                    {
                        PassthroughRelay.Log.Routed(_logger, id, destination.ToString(), reached.Reached);
                    }
                    handedOn = true;
                    return new Routed(upstream, hello.Bytes);
                }
                (refusal, detail) = (reached.Refusal, reached.Detail);
            }
        }
        finally
        {
            if (!handedOn)
            {
                BytePump.ReturnPooled(hello.Bytes);
            }
        }
        await RefuseAsync(client, id, refusal, detail).ConfigureAwait(false);
        return default;
    }

    /// <summary>
    /// The ClientHello read: its server name (what the parser noted about it in <see cref="Detail"/>) and its bytes (to
    /// forward first, in a buffer rented from the shared pool), or why there is none (and no buffer).
    /// </summary>
    /// <remarks>A malformed hello's <see cref="Alert"/> is the one its parser named.</remarks>
    private readonly record struct Hello(
        string? ServerName, ReadOnlyMemory<byte> Bytes, RefusalReason? Refusal, string? Detail, TlsAlertDescription? Alert = null)
    {
        public static Hello Refused(RefusalReason reason, string? detail, TlsAlertDescription? alert = null) => new(null, default, reason, detail, alert);
    }

    /// <summary>
    /// Reads the whole ClientHello into a pooled buffer and moves a complete one into a pooled array of its own size,
    /// which goes to whoever forwards it (and back to the pool once forwarded: an idle connection holds no buffer).
    /// </summary>
    /// <remarks>
    /// The read buffer (the largest hello and its records' headers: 32 KiB from the pool) is held only while a read takes
    /// bytes into it. A client that has sent nothing yet, or part of a hello and then nothing, is waited for with a
    /// zero-byte read, what it sent meanwhile in an array of that size: else every silent or stalled connection kept
    /// 32 KiB until the handshake timeout, as many as the connection limit allows, for a client that had only to connect.
    /// A read still tries the socket first without waiting (most hellos are there whole by the time the connection is
    /// accepted), and the wait after that try asks the kernel nothing more: the same calls as a waiting read.
    /// </remarks>
    private async Task<Hello> ReadClientHelloAsync(SocketConnection client, CancellationToken closeAll)
    {
        var size = _options.MaxClientHelloBytes + RecordOverheadAllowance;
        using var deadline = new Deadline(_limits.HandshakeTimeout, _time, closeAll);
        byte[]? buffer = null;
        // What came so far while the buffer is back in the pool (null while it is held, or when nothing came).
        byte[]? parked = null;
        var filled = 0;
        var progress = default(ClientHelloProgress);
        try
        {
            while (true)
            {
                int read;
                try
                {
                    buffer ??= Unpark(ref parked, filled, size);
                    if (!client.IsNonBlocking)
                    {
                        read = await client.ReadAsync(buffer.AsMemory(filled), deadline.Token).ConfigureAwait(false);
                    }
                    else if (client.ReceiveNow(buffer.AsSpan(filled)) is var now && now != -LinuxSplice.EAGAIN)
                    {
                        read = now >= 0 ? (int)now : throw LinuxSplice.ToSocketException((int)-now);
                    }
                    else
                    {
                        Park(ref buffer, ref parked, filled);
                        await client.ReadAsync(Memory<byte>.Empty, deadline.Token).ConfigureAwait(false);
                        continue;
                    }
                }
                catch (OperationCanceledException)
                {
                    return Hello.Refused(closeAll.IsCancellationRequested ? RefusalReason.ShuttingDown : RefusalReason.HandshakeTimeout, null);
                }
                catch (SocketException e)
                {
                    return Hello.Refused(RefusalReason.ClientClosed, e.SocketErrorCode.ToString());
                }
                if (read == 0)
                {
                    return Hello.Refused(RefusalReason.ClientClosed, null);
                }
                filled += read;

                var result = ClientHelloParser.Resume(new ReadOnlySequence<byte>(buffer, 0, filled), _options.MaxClientHelloBytes, ref progress);
                switch (result.Status)
                {
                    case ClientHelloStatus.Complete:
                        // Moved to a pooled array of its own size: the read buffer (tens of KiB) would otherwise be
                        // held through the upstream's lookup and dial, up to the connect timeout.
                        var bytes = ArrayPool<byte>.Shared.Rent(filled);
                        buffer.AsSpan(0, filled).CopyTo(bytes);
                        return new Hello(result.ServerName, bytes.AsMemory(0, filled), null, result.Detail);
                    case ClientHelloStatus.NotTls:
                        return Hello.Refused(RefusalReason.NotTls, result.Detail);
                    case ClientHelloStatus.Malformed:
                        return Hello.Refused(RefusalReason.MalformedHello, result.Detail, result.Alert);
                    case ClientHelloStatus.TooLarge:
                        return Hello.Refused(RefusalReason.HelloTooLarge, result.Detail);
                    case ClientHelloStatus.Incomplete when filled == buffer.Length:
                        return Hello.Refused(RefusalReason.HelloTooLarge, "fragmented beyond the buffer");
                    default:
                        continue;
                }
            }
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
            if (parked is not null)
            {
                ArrayPool<byte>.Shared.Return(parked);
            }
        }
    }

    /// <summary>
    /// Before a wait: the first <paramref name="filled"/> bytes of <paramref name="buffer"/> into a pooled array of about
    /// their size, and the buffer back to the pool; kept as it is when they fill more than half of it (no smaller array).
    /// </summary>
    private static void Park(ref byte[]? buffer, ref byte[]? parked, int filled)
    {
        if (buffer is null || filled > buffer.Length / 2)
        {
            return;
        }
        if (filled > 0)
        {
            parked = ArrayPool<byte>.Shared.Rent(filled);
            buffer.AsSpan(0, filled).CopyTo(parked);
        }
        ArrayPool<byte>.Shared.Return(buffer);
        buffer = null;
    }

    /// <summary>After a wait: a read buffer of <paramref name="size"/> bytes, holding the <paramref name="filled"/> bytes parked.</summary>
    private static byte[] Unpark(ref byte[]? parked, int filled, int size)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        if (parked is not null)
        {
            parked.AsSpan(0, filled).CopyTo(buffer);
            ArrayPool<byte>.Shared.Return(parked);
            parked = null;
        }
        return buffer;
    }

    /// <summary>Counts and logs a refusal and answers it: with <paramref name="alert"/> when given, else the reason's alert.</summary>
    private async Task RefuseAsync(SocketConnection client, long id, RefusalReason reason, string? detail, TlsAlertDescription? alert = null)
    {
        _metrics.Refused(PassthroughRelay.FrontDoor, reason);
        PassthroughRelay.Log.Refused(_logger, id, reason.Name(), detail is null ? "" : $" ({detail})");
        alert ??= reason switch
        {
            RefusalReason.ClientClosed or RefusalReason.HandshakeTimeout or RefusalReason.ShuttingDown => (TlsAlertDescription?)null,
            RefusalReason.NoServerName or RefusalReason.NoRoute or RefusalReason.InvalidDestination or RefusalReason.DestinationProhibited => TlsAlertDescription.UnrecognizedName,
            RefusalReason.MalformedHello => TlsAlertDescription.DecodeError,
            RefusalReason.NotTls or RefusalReason.HelloTooLarge => TlsAlertDescription.HandshakeFailure,
            _ => TlsAlertDescription.InternalError,
        };
        if (alert is not null)
        {
            await LingeringClose.CloseAsync(client, TlsAlert.Fatal(alert.Value), _time).ConfigureAwait(false);
        }
    }
}
