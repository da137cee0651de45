using Microsoft.Extensions.Logging;

namespace Passage.Telemetry;

/// <summary>How Passage writes its log.</summary>
public sealed record LogOptions
{
    /// <summary>Lowest level written. Default Information, at which no line pairs a client address with a destination.</summary>
    public LogLevel Level { get; init; } = LogLevel.Information;

    /// <summary>
    /// <c>text</c> (one line per event, for people), <c>json</c> (one JSON object per line) or
    /// <c>systemd</c> (journald priority prefixes). Default <c>systemd</c> when started by systemd
    /// with its output going to the journal, else <c>text</c>.
    /// </summary>
    public string Format { get; init; } = "text";
}
