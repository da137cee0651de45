using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

/// <summary>
/// Blocking lookups on threads of their own. The lookup here blocks until the test lets it go, as getaddrinfo
/// does while a DNS server stays silent.
/// </summary>
public sealed class LookupThreadsTests : IDisposable
{
    private readonly ManualResetEventSlim _release = new();
    private readonly ConcurrentQueue<string> _started = new();
    private readonly ConcurrentBag<bool> _onPoolThread = new();
    private int _running;
    private int _mostAtOnce;

    public void Dispose()
    {
        _release.Set();
        _release.Dispose();
    }

    [Fact]
    public async Task Lookups_run_off_the_thread_pool_at_most_max_at_once_and_each_gets_its_own_answer()
    {
        var threads = new LookupThreads(BlockingLookup, maxThreads: 4, idleExit: TimeSpan.FromSeconds(30));
        var lookups = Enumerable.Range(0, 20).Select(i => threads.LookupAsync($"host{i}.test", CancellationToken.None)).ToList();

        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 4);
        Assert.Equal(4, threads.Threads);
        Assert.All(lookups, l => Assert.False(l.IsCompleted));

        _release.Set();
        var answers = await Task.WhenAll(lookups).WaitAsync(Timeouts.Default);
        for (var i = 0; i < answers.Length; i++)
        {
            Assert.Equal(AddressOf($"host{i}.test"), Assert.Single(answers[i]));
        }
        Assert.Equal(4, _mostAtOnce);
        Assert.Equal(20, _started.Count);
        Assert.DoesNotContain(true, _onPoolThread);
    }

    /// <summary>
    /// A thread the runtime cannot start (no descriptor left: its start takes a pipe, and fails with
    /// OutOfMemoryException) fails the lookup at once and takes no place for good: counted, 32 such failures had left no
    /// place, and no lookup ran again.
    /// </summary>
    [Fact]
    public async Task A_thread_that_cannot_start_fails_its_lookup_at_once_and_keeps_no_place()
    {
        var failing = true;
        var threads = new LookupThreads(name => [AddressOf(name)], maxThreads: 2, idleExit: TimeSpan.FromSeconds(30))
        {
            StartThread = run =>
            {
                if (Volatile.Read(ref failing))
                {
                    throw new OutOfMemoryException();
                }
                new Thread(run) { IsBackground = true }.Start();
            },
        };
        for (var i = 0; i < 5; i++)
        {
            var failed = await Assert.ThrowsAsync<SocketException>(() => threads.LookupAsync($"fail{i}.test", CancellationToken.None).WaitAsync(Timeouts.Default));
            Assert.Equal(SocketError.NoBufferSpaceAvailable, failed.SocketErrorCode);
        }
        Assert.Equal(0, threads.Threads);

        Volatile.Write(ref failing, false);
        var answer = await threads.LookupAsync("after.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        Assert.Equal(AddressOf("after.test"), Assert.Single(answer));
    }

    [Fact]
    public async Task A_caller_that_gives_up_is_answered_at_once_and_its_lookup_is_never_started()
    {
        var threads = new LookupThreads(BlockingLookup, maxThreads: 1, idleExit: TimeSpan.FromSeconds(30));
        var first = threads.LookupAsync("first.test", CancellationToken.None);
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 1);

        using var giveUp = new CancellationTokenSource();
        var abandoned = threads.LookupAsync("abandoned.test", giveUp.Token);
        var after = threads.LookupAsync("after.test", CancellationToken.None);
        giveUp.Cancel();
        // Answered while the only thread is still stuck in the first lookup.
        var canceled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned.WaitAsync(Timeouts.Default));
        Assert.Equal(giveUp.Token, canceled.CancellationToken);
        Assert.False(first.IsCompleted);

        _release.Set();
        await Task.WhenAll(first, after).WaitAsync(Timeouts.Default);
        Assert.Equal(["first.test", "after.test"], _started);
    }

    [Fact]
    public async Task A_token_already_cancelled_starts_nothing()
    {
        var threads = new LookupThreads(BlockingLookup, maxThreads: 1, idleExit: TimeSpan.FromSeconds(30));
        var task = threads.LookupAsync("never.test", new CancellationToken(canceled: true));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.Equal(0, threads.Threads);
        Assert.Empty(_started);
    }

    [Fact]
    public async Task A_failed_lookup_reaches_its_caller_and_the_thread_goes_on()
    {
        var threads = new LookupThreads(
            name => name == "missing.test" ? throw new SocketException((int)SocketError.HostNotFound) : [AddressOf(name)],
            maxThreads: 1,
            idleExit: TimeSpan.FromSeconds(30));
        var failed = await Assert.ThrowsAsync<SocketException>(() => threads.LookupAsync("missing.test", CancellationToken.None).WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.HostNotFound, failed.SocketErrorCode);
        Assert.Equal(AddressOf("found.test"), Assert.Single(await threads.LookupAsync("found.test", CancellationToken.None).WaitAsync(Timeouts.Default)));
        Assert.Equal(1, threads.Threads);
    }

    [Fact]
    public async Task Threads_idle_for_the_idle_time_end_and_the_next_lookup_starts_one_again()
    {
        var threads = new LookupThreads(name => [AddressOf(name)], maxThreads: 2, idleExit: TimeSpan.FromMilliseconds(50));
        await Task.WhenAll(threads.LookupAsync("a.test", CancellationToken.None), threads.LookupAsync("b.test", CancellationToken.None)).WaitAsync(Timeouts.Default);
        await Timeouts.WaitUntilAsync(() => threads.Threads == 0);

        Assert.Equal(AddressOf("c.test"), Assert.Single(await threads.LookupAsync("c.test", CancellationToken.None).WaitAsync(Timeouts.Default)));
    }

    [Fact]
    public async Task A_try_again_that_took_the_resolvers_timeout_is_a_timeout_and_a_quick_one_stays_what_it_is()
    {
        var threads = new LookupThreads(
            name => name.StartsWith("slow", StringComparison.Ordinal) ? WaitThenFail(name, SocketError.TryAgain)
                : name == "missing.test" ? throw new SocketException((int)SocketError.HostNotFound)
                : throw new SocketException((int)SocketError.TryAgain),
            maxThreads: 1,
            idleExit: TimeSpan.FromSeconds(30),
            silentAfter: () => TimeSpan.FromSeconds(1));

        // The lookup itself ran for at least 1.2 s before failing: no server answered.
        var slow = threads.LookupAsync("slow.test", CancellationToken.None);
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 1);
        // Queued behind it for as long: its time in the queue is not the lookup's.
        var quick = threads.LookupAsync("quick.test", CancellationToken.None);
        var missing = threads.LookupAsync("missing.test", CancellationToken.None);
        await Task.Delay(1200);
        _release.Set();

        Assert.Equal(SocketError.TimedOut, (await Assert.ThrowsAsync<SocketException>(() => slow.WaitAsync(Timeouts.Default))).SocketErrorCode);
        Assert.Equal(SocketError.TryAgain, (await Assert.ThrowsAsync<SocketException>(() => quick.WaitAsync(Timeouts.Default))).SocketErrorCode);
        Assert.Equal(SocketError.HostNotFound, (await Assert.ThrowsAsync<SocketException>(() => missing.WaitAsync(Timeouts.Default))).SocketErrorCode);
    }

    [Fact]
    public async Task Without_a_silence_threshold_a_slow_try_again_is_passed_on_as_it_is()
    {
        var threads = new LookupThreads(name => WaitThenFail(name, SocketError.TryAgain), maxThreads: 1, idleExit: TimeSpan.FromSeconds(30));
        var slow = threads.LookupAsync("slow.test", CancellationToken.None);
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 1);
        await Task.Delay(200);
        _release.Set();
        Assert.Equal(SocketError.TryAgain, (await Assert.ThrowsAsync<SocketException>(() => slow.WaitAsync(Timeouts.Default))).SocketErrorCode);
    }

    /// <summary>
    /// Lookups queued faster than a woken idle thread takes them: each must still get a thread of its own while
    /// there is room (an idle thread that has been woken but has not yet run counts only once).
    /// </summary>
    [Fact]
    public async Task Lookups_queued_together_after_an_idle_spell_run_together()
    {
        var threads = new LookupThreads(BlockingLookup, maxThreads: 3, idleExit: TimeSpan.FromSeconds(30));
        _release.Set();
        await threads.LookupAsync("warm.test", CancellationToken.None).WaitAsync(Timeouts.Default);
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 0);
        _release.Reset();

        var lookups = Enumerable.Range(0, 3).Select(i => threads.LookupAsync($"burst{i}.test", CancellationToken.None)).ToList();
        await Timeouts.WaitUntilAsync(() => Volatile.Read(ref _running) == 3);
        _release.Set();
        await Task.WhenAll(lookups).WaitAsync(Timeouts.Default);
        Assert.Equal(3, threads.Threads);
    }

    private IPAddress[] BlockingLookup(string name)
    {
        _started.Enqueue(name);
        _onPoolThread.Add(Thread.CurrentThread.IsThreadPoolThread);
        var now = Interlocked.Increment(ref _running);
        int most;
        while ((most = Volatile.Read(ref _mostAtOnce)) < now && Interlocked.CompareExchange(ref _mostAtOnce, now, most) != most)
        {
        }
        try
        {
            Assert.True(_release.Wait(Timeouts.Default), "the test never released the lookup");
            return [AddressOf(name)];
        }
        finally
        {
            Interlocked.Decrement(ref _running);
        }
    }

    /// <summary>An IPv6 address spelling the name (16 characters at most), so every name has its own.</summary>
    /// <summary>Blocks as <see cref="BlockingLookup"/> does, then fails with <paramref name="error"/>.</summary>
    private IPAddress[] WaitThenFail(string name, SocketError error)
    {
        BlockingLookup(name);
        throw new SocketException((int)error);
    }

    private static IPAddress AddressOf(string name) => new(System.Text.Encoding.ASCII.GetBytes(name.PadRight(16, '\0')));
}
