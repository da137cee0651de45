using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Passage.Telemetry;

namespace Passage.Cli.Hosting;

/// <summary>Console logging in the chosen format, always to standard error (standard output is for results).</summary>
internal static class LoggingSetup
{
    /// <summary>True when systemd connected our output to the journal.</summary>
    public static bool JournalAttached => Environment.GetEnvironmentVariable("JOURNAL_STREAM") is { Length: > 0 };

    /// <summary>The factory for <paramref name="options"/>; its messages are written with control characters escaped (<see cref="EscapingLoggerFactory"/>).</summary>
    public static ILoggerFactory Create(LogOptions options) => new EscapingLoggerFactory(LoggerFactory.Create(builder =>
    {
        builder.SetMinimumLevel(options.Level);
        // Kestrel and hosting are parts inside Passage; their routine lines are not the operator's business.
        builder.AddFilter("Microsoft", options.Level > LogLevel.Warning ? options.Level : LogLevel.Warning);
        builder.AddConsole(o =>
        {
            o.LogToStandardErrorThreshold = LogLevel.Trace;
            // Lines queue for a writer thread. When whoever reads standard error stalls (a paused pager, a stuck
            // log shipper) and the queue is full, the framework's default makes every thread that logs wait, the
            // relay's I/O threads among them: traffic would stop for the log. Lines are dropped instead, and the
            // writer says how many once it can write again.
            o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
        });
        switch (options.Format)
        {
            case "json":
                builder.AddJsonConsole(o =>
                {
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ";
                });
                break;
            case "systemd":
                // journald adds its own timestamps; the <N> priority prefix sets the level.
                builder.AddSystemdConsole();
                break;
            default:
                builder.AddSimpleConsole(o =>
                {
                    o.SingleLine = true;
                    o.UseUtcTimestamp = true;
                    o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
                    o.ColorBehavior = LoggerColorBehavior.Disabled;
                });
                break;
        }
    }));
}
