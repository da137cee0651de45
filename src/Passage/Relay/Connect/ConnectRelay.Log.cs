using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay.Connect;

public sealed partial class ConnectRelay
{
    private static partial class Log
    {
        [LoggerMessage(LogEvents.ConnectRefused, LogLevel.Debug, "Connection {ConnectionId} refused: {Reason}", EventName = "ConnectionRefused")]
        public static partial void Refused(ILogger logger, long connectionId, string reason);

        [LoggerMessage(LogEvents.TokenFileReloaded, LogLevel.Information, "Token file {Path} re-read: {Count} tokens in force", EventName = "TokenFileReloaded")]
        public static partial void TokenFileReloaded(ILogger logger, string path, int count);

        [LoggerMessage(LogEvents.CertificateNotWritten, LogLevel.Warning, "The relay's certificate cannot be written to {Path} ({Reason}): clients that verify the relay by that file cannot, those that pin its node ID can", EventName = "CertificateNotWritten")]
        public static partial void CertificateNotWritten(ILogger logger, string path, string reason);

        [LoggerMessage(LogEvents.TokenFileEmpty, LogLevel.Warning, "Token file {Path} holds no token: every CONNECT is refused 407 until one is added", EventName = "TokenFileEmpty")]
        public static partial void TokenFileEmpty(ILogger logger, string path);

        [LoggerMessage(LogEvents.TokenFileUnusable, LogLevel.Warning, "Token file {Path} cannot be used ({Error}); the {Count} tokens read last stay in force", EventName = "TokenFileUnusable")]
        public static partial void TokenFileUnusable(ILogger logger, string path, string error, int count);

        /// <summary>What a re-read of the token file found (never a token).</summary>
        public static void TokenFileChanged(ILogger logger, string path, Auth.TokenFileChangedEventArgs change)
        {
            if (change.Error is { } error)
            {
                TokenFileUnusable(logger, path, error, change.TokenCount);
            }
            else if (change.TokenCount == 0)
            {
                TokenFileEmpty(logger, path);
            }
            else
            {
                TokenFileReloaded(logger, path, change.TokenCount);
            }
            if (change.Exposure is { } exposure)
            {
                SecretWarnings.Log(logger, SecretWarnings.Format("relay.tokenFile", exposure));
            }
        }
    }
}
