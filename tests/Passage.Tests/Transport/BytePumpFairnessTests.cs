using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// A direction whose source always has data and whose destination always has room never has to wait; it must still
/// give up its thread now and then. With inline socket completions that thread is an event thread other
/// connections' sockets share.
/// </summary>
public sealed class BytePumpFairnessTests
{
    [Fact]
    public async Task A_direction_that_never_waits_still_gives_other_work_a_turn()
    {
        // One thread's worth of scheduler: while the pump's loop holds it, nothing else queued there runs.
        var exclusive = new ConcurrentExclusiveSchedulerPair().ExclusiveScheduler;
        var endless = new EndlessConnection();
        var quiet = new QuietConnection();
        using var stop = new CancellationTokenSource();
        var pump = await Task.Factory.StartNew(
            () => BytePump.RunAsync(endless, quiet, new PumpOptions { ZeroCopy = false }, cancellationToken: stop.Token),
            CancellationToken.None, TaskCreationOptions.None, exclusive);
        // Once bytes flow, ask the same scheduler for a turn.
        await endless.Flowing.WaitAsync(Timeouts.Default);
        var turn = Task.Factory.StartNew(() => quiet.Received, CancellationToken.None, TaskCreationOptions.None, exclusive);
        try
        {
            var movedWhenOthersRan = await turn.WaitAsync(Timeouts.Default);
            Assert.True(movedWhenOthersRan > 0);
        }
        finally
        {
            await stop.CancelAsync();
            var result = await pump.WaitAsync(Timeouts.Default);
            Assert.Equal(PumpEnd.Canceled, result.End);
        }
    }

    /// <summary>Always has data at once (zeros), and takes whatever is written at once, until aborted.</summary>
    private sealed class EndlessConnection : IDuplexConnection
    {
        private readonly TaskCompletionSource _flowing = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _aborted;

        public Task Flowing => _flowing.Task;

        public System.Net.Sockets.Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            ThrowIfAborted(cancellationToken);
            _flowing.TrySetResult();
            return ValueTask.FromResult(buffer.Length);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            ThrowIfAborted(cancellationToken);
            return ValueTask.CompletedTask;
        }

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Abort() => Volatile.Write(ref _aborted, 1);

        private void ThrowIfAborted(CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _aborted) != 0, this);
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    /// <summary>Never sends anything (its reads wait until it is aborted), and takes whatever is written at once, counting it.</summary>
    private sealed class QuietConnection : IDuplexConnection
    {
        private readonly CancellationTokenSource _aborted = new();
        private long _received;

        public long Received => Interlocked.Read(ref _received);

        public System.Net.Sockets.Socket? Socket => null;

        public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _aborted.Token);
            await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
            return 0;
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Interlocked.Add(ref _received, data.Length);
            return ValueTask.CompletedTask;
        }

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => ValueTask.CompletedTask;

        public void Abort() => _aborted.Cancel();

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
