using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Passage.Telemetry;

namespace Passage.Cli.Hosting;

/// <summary>Console logging in the chosen format, always to standard error (standard output is for results).</summary>
internal static class LoggingSetup
{
    /// <summary>The <c>--log-level</c> flag, alike in every role; <paramref name="note"/> is added to its help.</summary>
    public static System.CommandLine.Option<string?> LevelOption(string note = "") =>
        new("--log-level") { Description = "trace, debug, information, warning, error, critical or none. Default information" + note, HelpName = "LEVEL" };

    /// <summary>The <c>--log-format</c> flag, alike in every role.</summary>
    public static System.CommandLine.Option<string?> FormatOption() =>
        new("--log-format") { Description = "text, json or systemd. Default systemd under systemd's journal, else text", HelpName = "FORMAT" };

    /// <summary>
    /// True when standard error is the journal stream systemd connected: <c>JOURNAL_STREAM</c> names that stream
    /// (<c>DEVICE:INODE</c>, systemd.exec(5)), and is compared with standard error, not merely found set, as a shell or a
    /// command started from within a service inherits it with its output elsewhere (a terminal, a file, a pipe), where the
    /// journal's <c>&lt;6&gt;</c> prefixes are noise.
    /// </summary>
    public static bool JournalAttached => IsJournal(Environment.GetEnvironmentVariable("JOURNAL_STREAM"), StandardErrorLink());

    /// <summary>
    /// Whether <paramref name="journalStream"/> (<c>JOURNAL_STREAM</c>) names the stream standard error is, as its
    /// <c>/proc/self/fd/2</c> link reads (<c>socket:[INODE]</c> for the journal's socket); with no such link to read (no
    /// /proc), whether it is set at all.
    /// </summary>
    internal static bool IsJournal(string? journalStream, (bool Readable, string? Target) standardError)
    {
        if (journalStream is not { Length: > 0 })
        {
            return false;
        }
        if (!standardError.Readable)
        {
            return true;
        }
        var colon = journalStream.IndexOf(':', StringComparison.Ordinal);
        return colon > 0 && ulong.TryParse(journalStream.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var inode)
            && standardError.Target == $"socket:[{inode}]";
    }

    /// <summary>Where <c>/proc/self/fd/2</c> leads (null when standard error is closed), or not readable when there is no /proc.</summary>
    private static (bool Readable, string? Target) StandardErrorLink()
    {
        if (!Directory.Exists("/proc/self/fd"))
        {
            return (false, null);
        }
        try
        {
            return (true, new FileInfo("/proc/self/fd/2").LinkTarget);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (true, null);
        }
    }

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
