using System.Buffers;
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
internal sealed class PassthroughConnectionHandler
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

    public PassthroughConnectionHandler(
        PassthroughOptions options, RelayLimits limits, DestinationResolver resolver, ILogger logger, RelayMetrics metrics, TimeProvider time)
    {
        _options = options;
        _limits = limits;
        _upstreams = new UpstreamConnector(resolver, limits, logger, time);
        _logger = logger;
        _metrics = metrics;
        _time = time;
        _routes = new SniRouteTable(options.Routes);
        _pumpOptions = limits.PumpOptions(time);
    }

    public async Task HandleAsync(Socket clientSocket, long id, CancellationToken closeAll)
    {
        clientSocket.NoDelay = true;
        PassthroughRelay.Log.Accepted(_logger, id, clientSocket.RemoteEndPoint);
        await using var client = new SocketConnection(clientSocket);
        byte[]? buffer = ArrayPool<byte>.Shared.Rent(_options.MaxClientHelloBytes + RecordOverheadAllowance);
        try
        {
            var (hello, length) = await ReadClientHelloAsync(clientSocket, buffer, closeAll).ConfigureAwait(false);
            if (hello.Refusal is { } refused)
            {
                await RefuseAsync(client, id, refused, hello.Detail).ConfigureAwait(false);
                return;
            }

            HostPort target;
            if (_options.Upstream is { } fixedUpstream)
            {
                target = fixedUpstream;
            }
            else if (hello.ServerName is null)
            {
                await RefuseAsync(client, id, RefusalReason.NoServerName, null).ConfigureAwait(false);
                return;
            }
            else if (_routes.Match(hello.ServerName) is { } route)
            {
                target = route.TargetFor(hello.ServerName);
            }
            else
            {
                await RefuseAsync(client, id, RefusalReason.NoRoute, null).ConfigureAwait(false);
                return;
            }

            var reached = await _upstreams.ConnectAsync(target, closeAll).ConfigureAwait(false);
            if (reached.Socket is not { } upstreamSocket)
            {
                await RefuseAsync(client, id, reached.Refusal, reached.Detail).ConfigureAwait(false);
                return;
            }

            PassthroughRelay.Log.Routed(_logger, id, target.ToString(), upstreamSocket.RemoteEndPoint);
            await using var upstream = new SocketConnection(upstreamSocket);
            // The relayed connection keeps only the hello itself, not the buffer it was read into:
            // an idle connection holds no buffer.
            var helloBytes = buffer.AsSpan(0, length).ToArray();
            ArrayPool<byte>.Shared.Return(buffer);
            buffer = null;
            var result = await BytePump.RunAsync(client, upstream, _pumpOptions, helloBytes, closeAll).ConfigureAwait(false);
            _metrics.Relayed(PassthroughRelay.FrontDoor, result);
            PassthroughRelay.Log.Closed(_logger, id, result.End, result.FailedSide, result.ClientToUpstreamBytes, result.UpstreamToClientBytes);
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    private readonly record struct Hello(string? ServerName, RefusalReason? Refusal, string? Detail);

    private async Task<(Hello Hello, int Length)> ReadClientHelloAsync(Socket client, byte[] buffer, CancellationToken closeAll)
    {
        using var deadline = new CancellationTokenSource(_limits.HandshakeTimeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, closeAll);
        var filled = 0;
        while (true)
        {
            int read;
            try
            {
                read = await client.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, linked.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return (new Hello(null, closeAll.IsCancellationRequested ? RefusalReason.ShuttingDown : RefusalReason.HandshakeTimeout, null), filled);
            }
            catch (SocketException e)
            {
                return (new Hello(null, RefusalReason.ClientClosed, e.SocketErrorCode.ToString()), filled);
            }
            if (read == 0)
            {
                return (new Hello(null, RefusalReason.ClientClosed, null), filled);
            }
            filled += read;

            var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(buffer, 0, filled), _options.MaxClientHelloBytes);
            switch (result.Status)
            {
                case ClientHelloStatus.Complete:
                    return (new Hello(result.ServerName, null, null), filled);
                case ClientHelloStatus.NotTls:
                    return (new Hello(null, RefusalReason.NotTls, result.Detail), filled);
                case ClientHelloStatus.Malformed:
                    return (new Hello(null, RefusalReason.MalformedHello, result.Detail), filled);
                case ClientHelloStatus.TooLarge:
                    return (new Hello(null, RefusalReason.HelloTooLarge, result.Detail), filled);
                case ClientHelloStatus.Incomplete when filled == buffer.Length:
                    return (new Hello(null, RefusalReason.HelloTooLarge, "fragmented beyond the buffer"), filled);
                default:
                    continue;
            }
        }
    }

    private async Task RefuseAsync(SocketConnection client, long id, RefusalReason reason, string? detail)
    {
        _metrics.Refused(PassthroughRelay.FrontDoor, reason);
        PassthroughRelay.Log.Refused(_logger, id, reason.Name(), detail is null ? "" : $" ({detail})");
        var alert = reason switch
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
