using System.Net;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Passthrough;

// Privacy rule: at Information and above, no line carries both a client address and a destination,
// and no line that names a destination carries a connection id that a client line also carries.
// Per-connection detail (which does pair them through the connection id) is Debug only.
public sealed partial class PassthroughRelay
{
    internal static partial class Log
    {
        [LoggerMessage(LogEvents.PassthroughAccepted, LogLevel.Debug, "Connection {ConnectionId} from {Client}", EventName = "Accepted")]
        public static partial void Accepted(ILogger logger, long connectionId, EndPoint? client);

        [LoggerMessage(LogEvents.PassthroughRouted, LogLevel.Debug, "Connection {ConnectionId} relayed to {Upstream} at {Address}", EventName = "Routed")]
        public static partial void Routed(ILogger logger, long connectionId, string upstream, EndPoint? address);

        [LoggerMessage(LogEvents.PassthroughRefused, LogLevel.Debug, "Connection {ConnectionId} refused: {Reason}{Detail}", EventName = "Refused")]
        public static partial void Refused(ILogger logger, long connectionId, string reason, string detail);

        [LoggerMessage(LogEvents.PassthroughClosed, LogLevel.Debug, "Connection {ConnectionId} ended: {End} {FailedSide}; {ToUpstream} bytes to upstream, {ToClient} to client", EventName = "Closed")]
        public static partial void Closed(ILogger logger, long connectionId, PumpEnd end, PumpSide failedSide, long toUpstream, long toClient);


    }
}
