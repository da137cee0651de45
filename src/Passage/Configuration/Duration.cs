using System.Globalization;

namespace Passage.Configuration;

/// <summary>
/// Durations as operators write them: <c>500ms</c>, <c>30s</c>, <c>5m</c>, <c>1h</c>, <c>1d</c>, <c>0</c>, or
/// <c>infinite</c>. Nothing is coerced: a typo is an error, never zero. A number without its unit other than 0 is an
/// error too: HAProxy reads one as milliseconds, nginx and systemd as seconds, so <c>--idle-timeout 300</c> meant five
/// minutes to some operators and cut every connection after 300 ms here. Only where a format reads bare numbers as
/// milliseconds (the tunnel's settings, as ptproxy's) are they so read.
/// </summary>
public static class Duration
{
    /// <summary>The text shown in error messages.</summary>
    public const string Expected = "a duration with its unit, such as 500ms, 30s, 5m or 1h (at most 30d)";

    /// <summary>
    /// The longest duration read: 30 days. Every duration ends up in a timer, and .NET's timers take at most about 49.7
    /// days (2^32 − 2 ms): beyond that, each connection's timer threw, and the connection ended without an answer.
    /// </summary>
    public static readonly TimeSpan Max = TimeSpan.FromDays(30);

    /// <summary>
    /// Parses <paramref name="text"/>; false for anything that is not exactly a duration of whole milliseconds, and for a
    /// number without its unit other than 0 unless <paramref name="bareMilliseconds"/>.
    /// </summary>
    public static bool TryParse(string? text, out TimeSpan value, bool bareMilliseconds = false)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        var s = text.Trim();
        if (s.Equals("infinite", StringComparison.OrdinalIgnoreCase))
        {
            value = Timeout.InfiniteTimeSpan;
            return true;
        }
        var split = 0;
        while (split < s.Length && (char.IsAsciiDigit(s[split]) || s[split] == '.'))
        {
            split++;
        }
        if (split == 0 || !double.TryParse(s.AsSpan(0, split), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            return false;
        }
        double milliseconds;
        switch (s[split..].Trim().ToLowerInvariant())
        {
            case "" when number != 0 && !bareMilliseconds:
                return false;
            case "":
            case "ms":
                milliseconds = number;
                break;
            case "s":
                milliseconds = number * 1000;
                break;
            case "m":
            case "min":
                milliseconds = number * 60_000;
                break;
            case "h":
                milliseconds = number * 3_600_000;
                break;
            case "d":
                milliseconds = number * 86_400_000;
                break;
            default:
                return false;
        }
        // Whole milliseconds only, the finest a timer keeps: "0.5ms" ran as no time at all, and the effective settings
        // printed it as "0ms", which does not read back. A decimal's binary error ("1.1s": 1100.0000000000002) is not a fraction.
        var whole = Math.Round(milliseconds);
        if (milliseconds > Max.TotalMilliseconds || Math.Abs(milliseconds - whole) > 1e-6)
        {
            return false;
        }
        value = TimeSpan.FromMilliseconds(whole);
        return true;
    }

    /// <summary>Formats <paramref name="value"/> the way <see cref="TryParse"/> reads it back.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == Timeout.InfiniteTimeSpan)
        {
            return "infinite";
        }
        var ms = (long)value.TotalMilliseconds;
        return ms switch
        {
            _ when ms != 0 && ms % 3_600_000 == 0 => $"{ms / 3_600_000}h",
            _ when ms != 0 && ms % 60_000 == 0 => $"{ms / 60_000}m",
            _ when ms != 0 && ms % 1000 == 0 => $"{ms / 1000}s",
            _ => $"{ms}ms",
        };
    }
}
