using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// The last step of every CONNECT tunnel, HTTP/1.1 or HTTP/2: the <c>--require-tls</c> gate when
/// asked for, then the byte pump, then the counters (bytes are counted however the tunnel ended).
/// </summary>
internal static class TunnelPump
{
    public static async Task RunAsync(
        IDuplexConnection client,
        IDuplexConnection upstream,
        ConnectOptions options,
        TimeSpan handshakeTimeout,
        PumpOptions pumpOptions,
        ReadOnlyMemory<byte> preamble,
        RelayMetrics metrics,
        ILogger logger,
        long id,
        CancellationToken cancellationToken)
    {
        if (options.RequireTls)
        {
            var hello = await RequireTlsGate.ReadClientHelloAsync(client, preamble, handshakeTimeout, pumpOptions.TimeProvider, cancellationToken).ConfigureAwait(false);
            if (hello is null)
            {
                metrics.Refused(ConnectRelay.FrontDoor, RefusalReason.NotTls);
                TunnelLog.Refused(logger, id, RefusalReason.NotTls.Name(), "tunnel did not start with a TLS ClientHello");
                client.Abort();
                return;
            }
            preamble = hello;
        }
        metrics.TunnelOpen(1);
        try
        {
            var pump = BytePump.RunAsync(client, upstream, pumpOptions, preamble, cancellationToken);
            // This frame waits as long as the tunnel lives; the pump lets go of the first bytes once
            // they are written, and so does this frame.
            preamble = default;
            var result = await pump.ConfigureAwait(false);
            metrics.Relayed(ConnectRelay.FrontDoor, result);
            TunnelLog.Closed(logger, id, result.End, result.FailedSide, result.ClientToUpstreamBytes, result.UpstreamToClientBytes);
        }
        finally
        {
            metrics.TunnelOpen(-1);
        }
    }
}
