using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay.Connect;

internal sealed partial class TunnelOpener
{
    private static partial class Log
    {
        [LoggerMessage(LogEvents.UpstreamUnavailable, LogLevel.Warning, "Upstream {Upstream} unavailable: {Reason} ({SocketError})", EventName = "UpstreamUnavailable")]
        public static partial void UpstreamUnavailable(ILogger logger, string upstream, string reason, SocketError socketError);
    }
}
