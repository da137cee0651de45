using System.Net;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay;

internal sealed partial class FrontDoorListener
{
    private static partial class Log
    {
        [LoggerMessage(LogEvents.RelayListening, LogLevel.Information, "{FrontDoor} listening on {Endpoint}", EventName = "Listening")]
        public static partial void Listening(ILogger logger, string frontDoor, IPEndPoint endpoint);

        [LoggerMessage(LogEvents.RelayDraining, LogLevel.Information, "{FrontDoor} stopping: accepting no new connections; {Open} open connections have {DrainTimeout} to finish", EventName = "Draining")]
        public static partial void Draining(ILogger logger, string frontDoor, int open, string drainTimeout);

        [LoggerMessage(LogEvents.RelayStopped, LogLevel.Information, "{FrontDoor} stopped; connections closed at the drain deadline: {Closed}", EventName = "Stopped")]
        public static partial void Stopped(ILogger logger, string frontDoor, int closed);

        [LoggerMessage(LogEvents.RelayStoppedAtSignal, LogLevel.Information, "{FrontDoor} stopped, told not to wait for the drain deadline; connections closed at once: {Closed}", EventName = "StoppedAtSignal")]
        public static partial void StoppedAtSignal(ILogger logger, string frontDoor, int closed);

        [LoggerMessage(LogEvents.ConnectionLimitReached, LogLevel.Warning, "Connection refused: the limit of {Max} open connections is reached; new connections wait in the listen backlog for one to close, one refused (reset) every {PauseMs} ms while none does (further refusals are logged at Debug)", EventName = "ConnectionLimitReached")]
        public static partial void ConnectionLimitReached(ILogger logger, int max, double pauseMs);

        // No client address at default level: on a front door with one destination (pass-through to one upstream, a single
        // route or allow rule), a line naming the client pairs it with that destination.
        [LoggerMessage(LogEvents.ClientConnectionLimitReached, LogLevel.Warning, "{FrontDoor}: connection refused (reset): a client holds {Max} open connections, its limit (relay.maxConnectionsPerClient); others are still accepted (the client's address is logged at Debug)", EventName = "ClientConnectionLimitReached")]
        public static partial void ClientLimitReached(ILogger logger, string frontDoor, int max);

        [LoggerMessage(LogEvents.ClientConnectionLimitRefused, LogLevel.Debug, "Connection {ConnectionId} from {Client} refused: connection_limit_reached (the client's own limit)", EventName = "ClientConnectionLimitRefused")]
        public static partial void ClientLimitRefused(ILogger logger, long connectionId, IPAddress client);

        [LoggerMessage(LogEvents.ClientConnectionLimitLinesSkipped, LogLevel.Warning, "{FrontDoor}: {Count} more connections refused for a client at its limit were not logged (at most 10 lines every {WindowSeconds} s; connections.refused counts every one)", EventName = "ClientConnectionLimitLinesSkipped")]
        public static partial void ClientLimitLinesSkipped(ILogger logger, string frontDoor, int count, int windowSeconds);

        [LoggerMessage(LogEvents.RefusedAtLimit, LogLevel.Debug, "Connection {ConnectionId} refused: connection_limit_reached", EventName = "RefusedAtLimit")]
        public static partial void RefusedAtLimit(ILogger logger, long connectionId);

        [LoggerMessage(LogEvents.StuckAtStop, LogLevel.Error, "{FrontDoor}: {Open} connections did not close 10 s after being told to; stopping anyway", EventName = "StuckAtStop")]
        public static partial void StuckAtStop(ILogger logger, string frontDoor, int open);

        [LoggerMessage(LogEvents.AcceptPaused, LogLevel.Warning, "{FrontDoor}: accept failed ({Error}: out of descriptors or memory); spare descriptors released for the process, and new connections refused (reset) every {PauseMs} ms until the spares can be held again", EventName = "AcceptPaused")]
        public static partial void AcceptPaused(ILogger logger, string frontDoor, System.Net.Sockets.SocketError error, double pauseMs);

        [LoggerMessage(LogEvents.DescriptorHeadroomReached, LogLevel.Warning, "{FrontDoor}: a new connection got one of the last {Headroom} descriptors the open-file limit ({Limit}) allows, kept free for the runtime; new connections wait in the listen backlog, one refused (reset) every {PauseMs} ms at most, until one gets a lower descriptor. Raise the limit (ulimit -n, LimitNOFILE=)", EventName = "DescriptorHeadroomReached")]
        public static partial void DescriptorHeadroomReached(ILogger logger, string frontDoor, int headroom, long? limit, double pauseMs);

        [LoggerMessage(LogEvents.ConnectionFault, LogLevel.Error, "Connection {ConnectionId} failed unexpectedly", EventName = "ConnectionFault")]
        public static partial void ConnectionFault(ILogger logger, long connectionId, Exception error);
    }
}
