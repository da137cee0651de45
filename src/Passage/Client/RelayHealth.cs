namespace Passage.Client;

/// <summary>
/// What the client knows of one relay: up or down, an exponentially weighted moving average of its
/// round-trip time, and when to probe it next (backing off while it stays down).
/// </summary>
internal sealed class RelayHealth(int order)
{
    /// <summary>Weight of a new sample in the average.</summary>
    public const double Alpha = 0.3;

    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    private readonly object _gate = new();
    private TimeSpan _backoff = FirstBackoff;

    /// <summary>The relay's place in the configured list (the tie-break, and the order while nothing is measured).</summary>
    public int Order { get; } = order;

    public bool IsUp { get; private set; } = true;

    /// <summary>The average round trip in milliseconds, or null before the first measurement.</summary>
    public double? RttMilliseconds { get; private set; }

    /// <summary>When a down relay may be probed again (timestamp of the client's clock).</summary>
    public long NextProbe { get; private set; }

    public void Succeeded(TimeSpan? roundTrip)
    {
        lock (_gate)
        {
            IsUp = true;
            _backoff = FirstBackoff;
            if (roundTrip is { } rtt)
            {
                var sample = rtt.TotalMilliseconds;
                RttMilliseconds = RttMilliseconds is { } average ? average + Alpha * (sample - average) : sample;
            }
        }
    }

    public void Failed(TimeProvider time)
    {
        lock (_gate)
        {
            IsUp = false;
            NextProbe = time.GetTimestamp() + (long)(_backoff.TotalSeconds * time.TimestampFrequency);
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }
}
