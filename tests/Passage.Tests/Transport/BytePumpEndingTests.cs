using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// What a run reports as its end when several things end it at nearly the same moment: the first cause is the one
/// reported, whatever else fires while the run winds down.
/// </summary>
public sealed class BytePumpEndingTests
{
    [Fact]
    public async Task A_run_that_failed_stays_failed_when_the_idle_timer_fires_while_it_winds_down()
    {
        var clock = new ManualTimeProvider();
        var client = new HeldConnection();
        var upstream = new HeldConnection();
        var pump = BytePump.RunAsync(client, upstream, new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock });

        // The client's connection breaks: the run stops and aborts both ends. The upstream's read ends only later,
        // as a stream's teardown may, and the idle timer comes due in between.
        client.EndRead(new IOException("connection reset by peer"));
        await upstream.Aborted.WaitAsync(Timeouts.Default);
        clock.Advance(TimeSpan.FromSeconds(11));
        upstream.EndRead(new ObjectDisposedException("upstream"));

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Client, result.FailedSide);
    }

    [Fact]
    public async Task A_run_that_timed_out_stays_timed_out_when_the_caller_cancels_while_it_winds_down()
    {
        var clock = new ManualTimeProvider();
        var client = new HeldConnection();
        var upstream = new HeldConnection();
        using var cancel = new CancellationTokenSource();
        var pump = BytePump.RunAsync(client, upstream, new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock }, cancellationToken: cancel.Token);

        clock.Advance(TimeSpan.FromSeconds(11));
        await Task.WhenAll(client.Aborted, upstream.Aborted).WaitAsync(Timeouts.Default);
        await cancel.CancelAsync();
        client.EndRead(new ObjectDisposedException("client"));
        upstream.EndRead(new ObjectDisposedException("upstream"));

        Assert.Equal(PumpEnd.IdleTimeout, (await pump.WaitAsync(Timeouts.Default)).End);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_idle_check_under_way_as_the_run_completes_does_not_reset_the_connections_it_has_handed_back(bool zeroCopy)
    {
        // Nothing moves for the idle timeout, and just as its check begins, both sides end: the run completes and hands its
        // connections back to the caller (which may still send on them, or close them gracefully) before the check ends.
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using var sockets = new SocketsDisposer(app, relayIn, relayOut, server);
        var clock = new HeldClock();
        var pump = BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut), new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock, ZeroCopy = zeroCopy });

        clock.Now = TimeSpan.FromSeconds(11);
        var check = clock.FireHeld();
        await clock.Reading.WaitAsync(Timeouts.Default);
        app.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        server.Shutdown(System.Net.Sockets.SocketShutdown.Send);
        Assert.Equal(PumpEnd.Completed, (await pump.WaitAsync(Timeouts.Default)).End);

        clock.Release();
        await check.WaitAsync(Timeouts.Default);
        Assert.False(relayIn.SafeHandle.IsClosed, "the client's connection was reset after the run had completed");
        Assert.False(relayOut.SafeHandle.IsClosed, "the upstream's connection was reset after the run had completed");
    }

    /// <summary>
    /// A clock whose one timer fires only when the test says, on a thread of its own, where reading the time waits until the
    /// test releases it: a check that has begun, held at the moment it reads the clock.
    /// </summary>
    private sealed class HeldClock : TimeProvider
    {
        private readonly TaskCompletionSource _reading = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly ManualResetEventSlim _released = new();
        private (TimerCallback Callback, object? State)? _timer;
        private long _now;
        private int _heldThread = -1;

        public TimeSpan Now
        {
            set => Volatile.Write(ref _now, value.Ticks);
        }

        public Task Reading => _reading.Task;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp()
        {
            if (Environment.CurrentManagedThreadId == Volatile.Read(ref _heldThread))
            {
                _reading.TrySetResult();
                _released.Wait(Timeouts.Default);
            }
            return Volatile.Read(ref _now);
        }

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            _timer = (callback, state);
            return new Unfired();
        }

        /// <summary>Fires the timer on a thread of its own, whose reading of the clock waits for <see cref="Release"/>.</summary>
        public Task FireHeld()
        {
            var (callback, state) = _timer ?? throw new InvalidOperationException("no timer");
            var thread = new Thread(() =>
            {
                Volatile.Write(ref _heldThread, Environment.CurrentManagedThreadId);
                callback(state);
            });
            thread.Start();
            return Task.Run(thread.Join);
        }

        public void Release() => _released.Set();

        private sealed class Unfired : ITimer
        {
            public bool Change(TimeSpan dueTime, TimeSpan period) => true;

            public void Dispose()
            {
            }

            public ValueTask DisposeAsync() => ValueTask.CompletedTask;
        }
    }

    private sealed class SocketsDisposer(params System.Net.Sockets.Socket[] sockets) : IDisposable
    {
        public void Dispose()
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>
    /// Has nothing to send: its one read waits until the test ends it (aborting does not end it, as a teardown that
    /// completes later would not), and takes whatever is written.
    /// </summary>
    private sealed class HeldConnection : IDuplexConnection
    {
        private readonly TaskCompletionSource<int> _read = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Aborted => _aborted.Task;

        public System.Net.Sockets.Socket? Socket => null;

        public void EndRead(Exception error) => _read.SetException(error);

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => new(_read.Task);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Abort() => _aborted.TrySetResult();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
