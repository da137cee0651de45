using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay.Connect;

public sealed partial class ConnectRelay
{
    private static partial class Log
    {
        [LoggerMessage(LogEvents.ConnectRefused, LogLevel.Debug, "Connection {ConnectionId} refused: {Reason}", EventName = "ConnectionRefused")]
        public static partial void Refused(ILogger logger, long connectionId, string reason);
    }
}
