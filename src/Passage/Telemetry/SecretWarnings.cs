using Microsoft.Extensions.Logging;
using Passage.Identity;

namespace Passage.Telemetry;

/// <summary>
/// The warning that a file holding a secret is too open (<see cref="SecretFile.Exposure(string)"/>), as one line naming the
/// setting that points at it: at start for each of a role's secrets, from <c>config check</c>, and again when a re-read
/// token file is found open to others in a new way. Nothing is refused for it.
/// </summary>
internal static partial class SecretWarnings
{
    /// <summary>The warning for the secret <paramref name="path"/> of the setting <paramref name="key"/>, or null when it is not too open.</summary>
    public static string? Of(string key, string path) => SecretFile.Exposure(path) is { } exposure ? Format(key, exposure) : null;

    /// <summary>The warning that the secret of the setting <paramref name="key"/> is too open, as <paramref name="exposure"/> tells.</summary>
    public static string Format(string key, string exposure) => $"{key}: {exposure}";

    /// <summary>Logs <paramref name="warning"/> (from <see cref="Of"/>) at warning level.</summary>
    [LoggerMessage(LogEvents.SecretFileExposed, LogLevel.Warning, "{Warning}", EventName = "SecretFileExposed")]
    public static partial void Log(ILogger logger, string warning);
}
