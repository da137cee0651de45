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
}
