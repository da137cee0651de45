using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Passage.Relay.Destinations;

/// <summary>
/// Runs blocking name lookups (getaddrinfo(3), through <see cref="Dns.GetHostAddresses(string)"/>) on a few
/// threads of their own, never on the thread pool.
/// </summary>
/// <remarks>
/// On Linux the runtime's <see cref="Dns.GetHostAddressesAsync(string, CancellationToken)"/> calls getaddrinfo
/// on a pool thread, which it holds until the answer comes: with an unresponsive DNS server, that is
/// <c>timeout × attempts</c> of resolv.conf (10 s by default) per name. A burst of destinations under a dead
/// domain then takes every pool thread, and with them the timers and continuations the rest of the relay runs
/// on: measured with 100 such names in flight, clients waited 9–50 s for answers that connectTimeout (10 s)
/// should have given, one every half second as the pool grew. Here a lookup waits in a queue for one of at
/// most <c>maxThreads</c> threads; the caller's cancellation (its connect timeout) ends its wait at once, and a
/// lookup whose caller has gone is skipped rather than started. A thread idle for <c>idleExit</c> ends.
/// <para>getaddrinfo answers EAI_AGAIN (<see cref="SocketError.TryAgain"/>) both when a server said SERVFAIL and when
/// no server answered at all, and with resolv.conf's defaults (5 s × 2) that second failure comes right at the
/// relay's connect timeout, racing it: the same silent server was answered 504 dns_timeout or 502 dns_error by
/// chance. A server's answer comes in milliseconds, silence only after the resolver's per-server timeout, so a
/// TryAgain that took most of that timeout (<c>silentAfter</c>) is reported as <see cref="SocketError.TimedOut"/>,
/// as the relay's own resolver reports its silent servers.</para>
/// <code>
///   LookupAsync ──▶ queue ──▶ wake an idle thread, if any; more queued than idle and fewer than max? start one
///       ▲                          │
///       └── cancelled: answered at once; skipped when its turn comes
/// </code>
/// </remarks>
internal sealed class LookupThreads
{
    private readonly Func<string, IPAddress[]> _lookup;
    private readonly int _maxThreads;
    private readonly TimeSpan _idleExit;
    private readonly Func<TimeSpan>? _silentAfter;
    private readonly object _gate = new();
    private readonly Queue<Work> _queue = new();
    private int _threads;
    private int _idle;

    /// <summary>Starts a thread running the given loop (a seam for tests: a start that fails, as with no descriptor left).</summary>
    internal Action<ThreadStart> StartThread { get; init; } = static run => new Thread(run) { IsBackground = true, Name = "passage dns" }.UnsafeStart();

    /// <summary>Creates the lookup threads (none runs until the first lookup).</summary>
    /// <param name="lookup">The blocking lookup; it signals failure by throwing.</param>
    /// <param name="maxThreads">At most this many lookups run at once.</param>
    /// <param name="idleExit">A thread with no lookup for this long ends.</param>
    /// <param name="silentAfter">
    /// A lookup failing with <see cref="SocketError.TryAgain"/> after at least this long (asked on each such failure)
    /// failed with <see cref="SocketError.TimedOut"/>: no server answered. Null to pass TryAgain on as it is.
    /// </param>
    public LookupThreads(Func<string, IPAddress[]> lookup, int maxThreads, TimeSpan idleExit, Func<TimeSpan>? silentAfter = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxThreads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(idleExit, TimeSpan.Zero);
        _lookup = lookup;
        _maxThreads = maxThreads;
        _idleExit = idleExit;
        _silentAfter = silentAfter;
    }

    /// <summary>
    /// The process's lookups of destination names: up to 32 at once (getaddrinfo blocks in recvfrom, so they
    /// cost little but a thread each), threads ending after 30 s without work. A TryAgain after nine tenths of
    /// resolv.conf's timeout (as the C library reads it now) is silence: no server answered in time. When fewer than
    /// <see cref="DescriptorsPerLookup"/> descriptors for each lookup running (this one's among them) are free below
    /// those kept for the runtime (<see cref="Transport.OpenFileLimit.Headroom"/>), getaddrinfo is not called (its
    /// sockets would take them) and the lookup fails with <see cref="SocketError.TooManyOpenSockets"/>, as when none is left.
    /// </summary>
    public static LookupThreads Shared { get; } = new(LookUpOutsideTheHeadroom, 32, TimeSpan.FromSeconds(30), () => ResolverConf.Load().Timeout * 0.9);

    // The lookups of Shared inside getaddrinfo, or about to be.
    private static int s_calling;

    /// <summary>getaddrinfo, when the descriptors it may take are free below the headroom; those of every lookup running too.</summary>
    private static IPAddress[] LookUpOutsideTheHeadroom(string name)
    {
        // A lookup running takes its sockets as its servers' turns come, at any moment: each free descriptor is
        // counted for one lookup only. Counted before it looks, so that two starting together each see the other
        // (both may be refused then, never both admitted to the same descriptors).
        var calling = Interlocked.Increment(ref s_calling);
        try
        {
            return Transport.OpenFileLimit.NextInHeadroom(DescriptorsPerLookup * calling)
                ? throw new SocketException((int)SocketError.TooManyOpenSockets)
                : Dns.GetHostAddresses(name);
        }
        finally
        {
            Interlocked.Decrement(ref s_calling);
        }
    }

    /// <summary>
    /// The most descriptors one getaddrinfo holds at once, as traced (glibc 2.36, <c>hosts: files dns</c>): a UDP socket
    /// per server of resolv.conf, each opened as its turn comes and all held until the lookup ends, so three when three
    /// servers stay silent (three is the most glibc reads, MAXNS); a reply truncated over UDP closes them before the TCP
    /// socket opens. The files it reads (nsswitch.conf, host.conf, resolv.conf, hosts) and its probes for nscd come one
    /// at a time, before the sockets.
    /// </summary>
    internal const int DescriptorsPerLookup = 3;

    /// <summary>Threads alive now, busy or idle.</summary>
    public int Threads
    {
        get
        {
            lock (_gate)
            {
                return _threads;
            }
        }
    }

    /// <summary>The addresses of <paramref name="name"/>, looked up on one of the threads.</summary>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (at once).</exception>
    /// <exception cref="System.Net.Sockets.SocketException">The lookup failed.</exception>
    public Task<IPAddress[]> LookupAsync(string name, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<IPAddress[]>(cancellationToken);
        }
        // The caller's continuation must not run on a lookup thread, nor the lookup on the caller's.
        var work = new Work(name, new TaskCompletionSource<IPAddress[]>(TaskCreationOptions.RunContinuationsAsynchronously));
        if (cancellationToken.CanBeCanceled)
        {
            work.Registration = cancellationToken.UnsafeRegister(
                static (state, token) => ((TaskCompletionSource<IPAddress[]>)state!).TrySetCanceled(token), work.Completion);
        }
        bool start;
        lock (_gate)
        {
            _queue.Enqueue(work);
            // Idle threads count as idle until they wake, woken or not: more lookups queued than there are idle
            // threads means one more thread is needed, room permitting.
            start = _queue.Count > _idle && _threads < _maxThreads;
            if (start)
            {
                _threads++;
            }
            if (_idle > 0)
            {
                Monitor.Pulse(_gate);
            }
        }
        if (start)
        {
            try
            {
                StartThread(Run);
            }
            catch (Exception e) when (e is OutOfMemoryException or ThreadStartException)
            {
                // The runtime could not start it: with no descriptor free its start fails (it takes a pipe) with
                // OutOfMemoryException. Counted, it would have taken a place for good, and with every place so taken no
                // lookup would run again.
                Unstarted();
            }
        }
        return work.Completion.Task;
    }

    /// <summary>
    /// A thread counted by <see cref="LookupAsync"/> did not start: it no longer counts, and when no thread is left to
    /// take them, the lookups queued fail now (no resources) rather than at their callers' timeouts.
    /// </summary>
    private void Unstarted()
    {
        List<Work>? orphaned = null;
        lock (_gate)
        {
            _threads--;
            if (_threads == 0)
            {
                orphaned = [.. _queue];
                _queue.Clear();
            }
        }
        foreach (var work in orphaned ?? [])
        {
            work.Completion.TrySetException(new SocketException((int)SocketError.NoBufferSpaceAvailable));
            work.Registration.Dispose();
        }
    }

    private void Run()
    {
        while (Next() is { } work)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                // Nobody is waiting any more (the caller's timeout): the thread goes to the next one.
                if (!work.Completion.Task.IsCompleted)
                {
                    work.Completion.TrySetResult(_lookup(work.Name));
                }
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.TryAgain && _silentAfter is not null
                && Stopwatch.GetElapsedTime(started) >= _silentAfter())
            {
                work.Completion.TrySetException(new SocketException((int)SocketError.TimedOut));
            }
            catch (Exception e)
            {
                work.Completion.TrySetException(e);
            }
            finally
            {
                work.Registration.Dispose();
            }
        }
    }

    /// <summary>The next lookup, waiting up to the idle time for one; null when this thread is to end.</summary>
    private Work? Next()
    {
        lock (_gate)
        {
            while (_queue.Count == 0)
            {
                _idle++;
                var woken = Monitor.Wait(_gate, _idleExit);
                _idle--;
                if (!woken && _queue.Count == 0)
                {
                    _threads--;
                    return null;
                }
            }
            return _queue.Dequeue();
        }
    }

    private sealed class Work(string name, TaskCompletionSource<IPAddress[]> completion)
    {
        public string Name { get; } = name;

        public TaskCompletionSource<IPAddress[]> Completion { get; } = completion;

        public CancellationTokenRegistration Registration { get; set; }
    }
}
