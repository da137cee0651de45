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
