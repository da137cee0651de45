using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>The deadline of one setup step: its timeout or the relay's stop, whichever comes first.</summary>
public sealed class DeadlineTests
{
    [Fact]
    public void Fires_when_its_timeout_has_passed_and_not_before()
    {
        var time = new ManualTimeProvider();
        using var stop = new CancellationTokenSource();
        using var deadline = new Deadline(TimeSpan.FromSeconds(5), time, stop.Token);

        time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.False(deadline.Token.IsCancellationRequested);
        time.Advance(TimeSpan.FromSeconds(0.1));
        Assert.True(deadline.Token.IsCancellationRequested);
        Assert.False(stop.IsCancellationRequested);
    }

    [Fact]
    public void Fires_when_stop_fires_and_at_once_when_stop_already_has()
    {
        var time = new ManualTimeProvider();
        using var stop = new CancellationTokenSource();
        using (var deadline = new Deadline(TimeSpan.FromMinutes(1), time, stop.Token))
        {
            Assert.False(deadline.Token.IsCancellationRequested);
            stop.Cancel();
            Assert.True(deadline.Token.IsCancellationRequested);
        }

        using var late = new Deadline(TimeSpan.FromMinutes(1), time, stop.Token);
        Assert.True(late.Token.IsCancellationRequested);
    }

    [Fact]
    public void Once_disposed_a_stop_no_longer_reaches_it_and_its_timer_is_gone()
    {
        var time = new ManualTimeProvider();
        using var stop = new CancellationTokenSource();
        var deadline = new Deadline(TimeSpan.FromMinutes(1), time, stop.Token);
        var token = deadline.Token;
        Assert.Equal(1, time.ArmedTimers);
        deadline.Dispose();

        Assert.Equal(0, time.ArmedTimers);
        stop.Cancel(); // would throw ObjectDisposedException through Cancel had the registration stayed
        Assert.False(token.IsCancellationRequested);
    }

    /// <summary>
    /// The relay's stop fires on one thread while a connection's step ends and disposes its deadline on another:
    /// Dispose waits for a cancel already running, so the stop never cancels a disposed source (which would throw
    /// out of the stop signal's Cancel and cut short the stop of every other connection).
    /// </summary>
    [Fact]
    public void A_stop_racing_dispose_never_reaches_a_disposed_source()
    {
        const int Rounds = 20_000;
        var failures = 0;
        CancellationTokenSource? stop = null;
        using var go = new Barrier(2);
        // The stop's thread: one for all rounds, meeting this one at the start and the end of each.
        var stopper = new Thread(() =>
        {
            for (var i = 0; i < Rounds; i++)
            {
                go.SignalAndWait();
                try
                {
                    Volatile.Read(ref stop)!.Cancel();
                }
                catch (AggregateException)
                {
                    Interlocked.Increment(ref failures);
                }
                go.SignalAndWait();
            }
        }) { IsBackground = true };
        stopper.Start();
        for (var i = 0; i < Rounds; i++)
        {
            using var source = new CancellationTokenSource();
            var deadline = new Deadline(TimeSpan.FromMinutes(1), TimeProvider.System, source.Token);
            Volatile.Write(ref stop, source);
            go.SignalAndWait();
            // Spread the dispose over the span of the cancel.
            Thread.SpinWait(i % 64);
            deadline.Dispose();
            go.SignalAndWait();
        }
        Assert.Equal(0, failures);
    }
}
