using System.Buffers;
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
        byte[]? hello = null;
        try
        {
            if (options.RequireTls)
            {
                var (buffer, length) = await RequireTlsGate.ReadClientHelloAsync(client, preamble, handshakeTimeout, pumpOptions.TimeProvider, cancellationToken).ConfigureAwait(false);
                if (buffer is null)
                {
                    metrics.Refused(ConnectRelay.FrontDoor, RefusalReason.NotTls);
                    TunnelLog.Refused(logger, id, RefusalReason.NotTls.Name(), "tunnel did not start with a TLS ClientHello");
                    client.Abort();
                    return;
                }
                hello = buffer;
                preamble = buffer.AsMemory(0, length);
            }
            metrics.TunnelOpen(1);
            try
            {
                var result = await BytePump.RunAsync(client, upstream, pumpOptions, preamble, cancellationToken).ConfigureAwait(false);
                metrics.Relayed(ConnectRelay.FrontDoor, result);
                TunnelLog.Closed(logger, id, result.End, result.FailedSide, result.ClientToUpstreamBytes, result.UpstreamToClientBytes);
            }
            finally
            {
                metrics.TunnelOpen(-1);
            }
        }
        finally
        {
            if (hello is not null)
            {
                ArrayPool<byte>.Shared.Return(hello);
            }
        }
    }
}
