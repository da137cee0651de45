using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Client;

// The client's log names relays, never destinations, above Debug.
public sealed partial class PassageClient
{
    private static partial class Log
    {
        [LoggerMessage(LogEvents.ClientRelayFailed, LogLevel.Warning, "Relay {Relay} failed a tunnel setup: {Failure}{Hint}", EventName = "RelayFailed")]
        public static partial void RelayFailedCore(ILogger logger, string relay, TunnelFailure failure, string hint);

        /// <summary>The failure, and what it may mean (<see cref="TunnelAttempt.Hint"/>); its detail at Debug: it may name the destination.</summary>
        public static void RelayFailed(ILogger logger, TunnelAttempt attempt, string relay)
        {
            RelayFailedCore(logger, relay, attempt.Failure, attempt.Hint is { } hint ? $" ({hint})" : "");
            RelayFailedDetail(logger, relay, attempt.Detail);
        }

        [LoggerMessage(LogEvents.ClientRelayFailedDetail, LogLevel.Debug, "Relay {Relay}: {Detail}", EventName = "RelayFailedDetail")]
        public static partial void RelayFailedDetail(ILogger logger, string relay, string detail);

        [LoggerMessage(LogEvents.ClientRelayBrokeTunnel, LogLevel.Warning, "Relay {Relay} broke a tunnel before its first byte, just after opening it; taking it for down", EventName = "RelayBrokeTunnel")]
        public static partial void RelayBrokeTunnel(ILogger logger, string relay);

        [LoggerMessage(LogEvents.ClientRelayDown, LogLevel.Warning, "Relay {Relay} is down; probing it with backoff", EventName = "RelayDown")]
        public static partial void RelayDown(ILogger logger, string relay);

        [LoggerMessage(LogEvents.ClientRelayUp, LogLevel.Information, "Relay {Relay} is up", EventName = "RelayUp")]
        public static partial void RelayUp(ILogger logger, string relay);
    }
}
