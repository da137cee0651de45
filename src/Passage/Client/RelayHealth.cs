namespace Passage.Client;

/// <summary>
/// What the client knows of one relay: up or down, an exponentially weighted moving average of its
/// round-trip time, when to probe it next (backing off while it stays down), and whether it refuses this client's
/// credentials lately.
/// </summary>
internal sealed class RelayHealth(int order)
{
    /// <summary>Weight of a new sample in the average.</summary>
    public const double Alpha = 0.3;

    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);

    /// <summary>How long a relay that refused this client's credentials (407) goes behind the others, at first and at most.</summary>
    private static readonly TimeSpan FirstRefusal = TimeSpan.FromSeconds(30), MaxRefusal = TimeSpan.FromMinutes(10);

    private readonly object _gate = new();
    private TimeSpan _backoff = FirstBackoff;
    private TimeSpan _refusal = FirstRefusal;
    private long _refusingUntil;
    private int _failures;

    /// <summary>The relay's place in the configured list (the tie-break, and the order while nothing is measured).</summary>
    public int Order { get; } = order;

    public bool IsUp { get; private set; } = true;

    /// <summary>The average round trip in milliseconds, or null before the first measurement.</summary>
    public double? RttMilliseconds { get; private set; }

    /// <summary>When a down relay may be probed again (timestamp of the client's clock).</summary>
    public long NextProbe { get; private set; }

    /// <summary>How many times the relay has been taken for down (see <see cref="FailedIfNoneSince"/>).</summary>
    public int Failures
    {
        get
        {
            lock (_gate)
            {
                return _failures;
            }
        }
    }

    /// <summary>
    /// The relay answered (a probe, a tunnel request): it is up, and <paramref name="roundTrip"/> goes into the average.
    /// The backoff stays: a relay that answers probes but fails tunnels would otherwise be up again within 250 ms each
    /// time, and fail the next tunnel; only a tunnel it serves (<see cref="Served"/>) starts the backoff afresh.
    /// </summary>
    public void Succeeded(TimeSpan? roundTrip)
    {
        lock (_gate)
        {
            IsUp = true;
            if (roundTrip is { } rtt)
            {
                var sample = rtt.TotalMilliseconds;
                RttMilliseconds = RttMilliseconds is { } average ? average + Alpha * (sample - average) : sample;
            }
        }
    }

    /// <summary>
    /// Whether the relay refused this client's credentials (407) lately: it is up, but tried after the relays that are
    /// up and have not, until <see cref="Served"/> or the refusal's time is over.
    /// </summary>
    public bool IsRefusing(TimeProvider time) => Volatile.Read(ref _refusingUntil) > time.GetTimestamp();

    /// <summary>
    /// The relay refused this client's credentials: behind the others for a while, twice as long as last time (30 s,
    /// up to 10 min) while it keeps refusing. A refusal while it is behind already (tunnels asked it together, or when
    /// the others failed) neither lengthens nor doubles that. True when it was not refusing before: worth a warning.
    /// </summary>
    public bool Refused(TimeProvider time)
    {
        lock (_gate)
        {
            var now = time.GetTimestamp();
            if (_refusingUntil > now)
            {
                return false;
            }
            Volatile.Write(ref _refusingUntil, now + (long)(_refusal.TotalSeconds * time.TimestampFrequency));
            _refusal = TimeSpan.FromTicks(Math.Min(_refusal.Ticks * 2, MaxRefusal.Ticks));
            return true;
        }
    }

    /// <summary>
    /// The relay served a tunnel request for this client (opened it, or answered the destination's failure): as
    /// <see cref="Succeeded"/>, and it works and takes the client's credentials, whatever it failed or refused before.
    /// </summary>
    public void Served(TimeSpan? roundTrip)
    {
        lock (_gate)
        {
            Succeeded(roundTrip);
            _backoff = FirstBackoff;
            Volatile.Write(ref _refusingUntil, 0);
            _refusal = FirstRefusal;
        }
    }

    public void Failed(TimeProvider time)
    {
        lock (_gate)
        {
            IsUp = false;
            _failures++;
            NextProbe = time.GetTimestamp() + (long)(_backoff.TotalSeconds * time.TimestampFrequency);
            _backoff = TimeSpan.FromTicks(Math.Min(_backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    /// <summary>
    /// As <see cref="Failed"/>, unless the relay has been taken for down since <see cref="Failures"/> read
    /// <paramref name="failures"/>: true if so. Tunnel setups that failed together (opened at once, one failure met) are
    /// one failure: the backoff doubles once, not once per tunnel.
    /// </summary>
    public bool FailedUnlessSince(int failures, TimeProvider time)
    {
        lock (_gate)
        {
            if (_failures != failures)
            {
                return false;
            }
            Failed(time);
            return true;
        }
    }

    /// <summary>
    /// As <see cref="Failed"/>, if the relay is up and has not been taken for down since <see cref="Failures"/> read
    /// <paramref name="failures"/>: true if so. What was known then tells nothing new now: the tunnels of one dropped
    /// connection break at once, and may be read one by one, after the relay is up again.
    /// </summary>
    public bool FailedIfNoneSince(int failures, TimeProvider time)
    {
        lock (_gate)
        {
            if (!IsUp || _failures != failures)
            {
                return false;
            }
            Failed(time);
            return true;
        }
    }
}
