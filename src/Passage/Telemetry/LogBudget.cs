using Microsoft.Extensions.Logging;

namespace Passage.Telemetry;

/// <summary>
/// How many lines of one kind may be written per window of time: for lines that clients can cause at will (an
/// upstream that fails for a destination a client chose), so that no client can fill the log. What is left out is
/// counted, and said before the next line that is let through.
/// </summary>
internal sealed class LogBudget(int perWindow, TimeSpan window, TimeProvider time)
{
    private readonly object _gate = new();
    private bool _started;
    private long _windowStart;
    private int _used;
    private int _skipped;

    /// <summary>The lines allowed per window.</summary>
    public int PerWindow => perWindow;

    /// <summary>The window.</summary>
    public TimeSpan Window => window;

    /// <summary>
    /// True when a line may be written now; then <paramref name="skippedBefore"/> is how many were left out since the
    /// last one written (to say first, when not 0). False: leave this one out (it is counted).
    /// </summary>
    public bool TryTake(out int skippedBefore)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            if (!_started || time.GetElapsedTime(_windowStart, now) >= window)
            {
                _started = true;
                _windowStart = now;
                _used = 0;
            }
            if (_used < perWindow)
            {
                _used++;
                skippedBefore = _skipped;
                _skipped = 0;
                return true;
            }
            _skipped++;
            skippedBefore = 0;
            return false;
        }
    }

    /// <summary>
    /// True when a Warning line may be written to <paramref name="logger"/> now: Warning is enabled there and the budget
    /// allows it. Before returning true, when lines were left out since the last one written, <paramref name="saySkipped"/>
    /// is given their count (with this budget and <paramref name="state"/>) to say so first.
    /// </summary>
    public bool TryTakeWarning<TState>(ILogger logger, TState state, Action<ILogger, int, LogBudget, TState> saySkipped)
    {
        if (!logger.IsEnabled(LogLevel.Warning) || !TryTake(out var skipped))
        {
            return false;
        }
        if (skipped > 0)
        {
            saySkipped(logger, skipped, this, state);
        }
        return true;
    }
}
