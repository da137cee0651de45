using System.Text.Json;
using Microsoft.Extensions.Logging;
using Passage.Configuration;

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

    /// <summary>Reads the <c>log</c> section, shared by every role; <paramref name="journalAttached"/> picks the default format.</summary>
    public static LogOptions Read(SettingsReader reader, bool journalAttached)
    {
        var level = reader.GetChoice("log:level", "information", "trace", "debug", "information", "warning", "error", "critical", "none");
        return new LogOptions
        {
            Level = Enum.Parse<LogLevel>(level, ignoreCase: true),
            Format = reader.GetChoice("log:format", journalAttached ? "systemd" : "text", "text", "json", "systemd"),
        };
    }

    /// <summary>Writes the <c>log</c> section as <see cref="Read"/> takes it, for the effective settings every role prints.</summary>
    internal void WriteJson(Utf8JsonWriter json)
    {
        json.WriteStartObject("log");
        json.WriteString("level", Level.ToString().ToLowerInvariant());
        json.WriteString("format", Format);
        json.WriteEndObject();
    }
}
