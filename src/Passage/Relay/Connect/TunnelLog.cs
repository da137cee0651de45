using System.Net;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

// Privacy rule: the lines that carry a client address and a destination together are Debug only.
// At Information and above a CONNECT relay logs its lifecycle and upstream trouble, never a client.
internal static partial class TunnelLog
{
    [LoggerMessage(LogEvents.TunnelRequested, LogLevel.Debug, "Tunnel {TunnelId} from {Client} to {Host}:{Port}", EventName = "TunnelRequested")]
    public static partial void Requested(ILogger logger, long tunnelId, IPAddress? client, string host, int port);

    [LoggerMessage(LogEvents.TunnelRefused, LogLevel.Debug, "Tunnel {TunnelId} refused: {Reason} ({Detail})", EventName = "TunnelRefused")]
    public static partial void Refused(ILogger logger, long tunnelId, string reason, string detail);

    [LoggerMessage(LogEvents.TunnelClosed, LogLevel.Debug, "Tunnel {TunnelId} ended: {End} {FailedSide}; {ToUpstream} bytes to upstream, {ToClient} to client", EventName = "TunnelClosed")]
    public static partial void Closed(ILogger logger, long tunnelId, PumpEnd end, PumpSide failedSide, long toUpstream, long toClient);
}
