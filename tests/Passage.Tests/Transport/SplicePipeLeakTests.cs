using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The zero-copy path holds a pipe only while data moves and closes it on every way out: a run that
/// completes, fails, is cancelled or times out leaves no descriptor (and no readiness registration) behind.
/// Waiting for a slow socket copies nothing out of the pipe.
/// </summary>
[Collection(PipeAccountingCollection.Name)]
public sealed class SplicePipeLeakTests
{
    [Fact]
    public async Task An_idle_spliced_connection_holds_no_pipe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using var _ = new Disposer(app, relayIn, relayOut, server);
        var pump = BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut));

        await Loopback.SendAllAsync(app, new byte[100_000]);
        Assert.Equal(100_000, (await Loopback.ReadToEndAsync(server, limit: 100_000)).Length);
        await Loopback.SendAllAsync(server, new byte[10]);
        Assert.Equal(10, (await Loopback.ReadToEndAsync(app, limit: 10)).Length);

        // Both directions parked again: no pipe while nothing moves, though the run goes on.
        await Timeouts.WaitUntilAsync(() => { SplicePipe.CloseSpares(); return SplicePipe.OpenCount == 0; });
        Assert.False(pump.IsCompleted);

        app.Shutdown(SocketShutdown.Send);
        server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpPath.Splice, result.ClientToUpstreamPath);
    }

    [Fact]
    public async Task A_direction_that_finds_no_pipe_copies_that_burst_and_splices_again_once_one_is_free()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using var _ = new Disposer(app, relayIn, relayOut, server);
        SplicePipe.CloseSpares();
        var cap = SplicePipe.MaxOpen;
        var noPipeBefore = SpliceFallbacks.Of(SpliceFallback.NoPipe);
        var pump = BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut));
        var first = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var second = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        long noPipeAfterFirst;
        try
        {
            // The process may hold no pipe: bursts larger than the first read want one and are copied instead.
            SplicePipe.MaxOpen = 0;
            var sending = Loopback.SendAllAsync(app, first);
            Assert.Equal(first, await Loopback.ReadToEndAsync(server, limit: first.Length));
            await sending.WaitAsync(Timeouts.Default);
            noPipeAfterFirst = SpliceFallbacks.Of(SpliceFallback.NoPipe);
            Assert.True(noPipeAfterFirst > noPipeBefore, "No burst was counted as copied for want of a pipe.");
            Assert.Equal(0, SplicePipe.OpenCount);
        }
        finally
        {
            SplicePipe.MaxOpen = cap;
        }

        // Pipes are to be had again: the next burst asks, gets one, and gives it back as a spare when it parks.
        var resending = Loopback.SendAllAsync(app, second);
        Assert.Equal(second, await Loopback.ReadToEndAsync(server, limit: second.Length));
        await resending.WaitAsync(Timeouts.Default);
        await Timeouts.WaitUntilAsync(() => SplicePipe.OpenCount > 0);
        Assert.Equal(noPipeAfterFirst, SpliceFallbacks.Of(SpliceFallback.NoPipe));

        app.Shutdown(SocketShutdown.Send);
        server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(PumpPath.Splice, result.ClientToUpstreamPath);
        Assert.Equal(first.Length + second.Length, result.ClientToUpstreamBytes);
    }

    [Fact]
    public void Pipes_come_smaller_as_the_budget_fills_and_small_ones_are_not_kept_once_a_new_one_would_be_larger()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        SplicePipe.CloseSpares();
        var (cap, budget) = (SplicePipe.MaxOpen, SplicePipe.LargeBudget);
        var large = new List<SplicePipe>();
        var small = new List<SplicePipe>();
        try
        {
            // The default budget (a quarter of the default pipe quota), whatever this machine's quota and open-file limit.
            SplicePipe.LargeBudget = 16L * 1024 * 1024;
            SplicePipe.MaxOpen = 100;
            if (!FullSizePipesGranted())
            {
                return;
            }
            // Rent until the budget for large pipes is filling up and two pipes came smaller.
            while (small.Count < 2)
            {
                var pipe = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out var errno);
                Assert.True(pipe is not null, $"No pipe (errno {errno}) after {large.Count} large ones.");
                (pipe.Capacity < PumpOptions.DefaultPipeSize ? small : large).Add(pipe);
            }
            Assert.Equal(9, large.Count);
            Assert.Equal(PumpOptions.DefaultPipeSize / 2, small[0].Capacity);
            var open = SplicePipe.OpenCount;

            // Given back while the budget is still full: a new pipe would be as small, so it is kept as a spare.
            small[0].Return();
            Assert.Equal(open, SplicePipe.OpenCount);
            // The large pipes close: a new pipe would be full-size again. A small one given back now is closed,
            // and the small spare is passed over (and closed) by the next rent, which opens a full-size pipe.
            large.ForEach(pipe => pipe.Dispose());
            small[1].Return();
            small.Clear();
            Assert.Equal(1, SplicePipe.OpenCount);
            var next = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out _);
            Assert.NotNull(next);
            large.Add(next);
            Assert.Equal(PumpOptions.DefaultPipeSize, next.Capacity);
            Assert.Equal(1, SplicePipe.OpenCount);

            // A full-size pipe given back is kept.
            next.Return();
            large.Clear();
            Assert.Equal(1, SplicePipe.OpenCount);

            // Past the budget, new pipes keep the kernel's default size.
            SplicePipe.CloseSpares();
            SplicePipe.LargeBudget = 0;
            var plain = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out _);
            Assert.NotNull(plain);
            small.Add(plain);
            Assert.Equal(16 * Environment.SystemPageSize, plain.Capacity);
        }
        finally
        {
            large.ForEach(pipe => pipe.Dispose());
            small.ForEach(pipe => pipe.Dispose());
            SplicePipe.CloseSpares();
            (SplicePipe.MaxOpen, SplicePipe.LargeBudget) = (cap, budget);
        }
    }

    [Fact]
    public void Directions_renting_at_once_do_not_pass_the_budget_for_large_pipes_together()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        SplicePipe.CloseSpares();
        var (cap, budget) = (SplicePipe.MaxOpen, SplicePipe.LargeBudget);
        const int Renters = 8;
        try
        {
            SplicePipe.MaxOpen = 1000;
            // A budget with room for a full-size pipe, whatever this machine's quota, to ask whether one is granted.
            SplicePipe.LargeBudget = 16L * 1024 * 1024;
            if (!FullSizePipesGranted())
            {
                return;
            }
            // Room for one pipe larger than the kernel's default (128 KiB), wanted by renters that start together,
            // many times over: each round, the large pipes must fit the budget however the renters interleaved.
            SplicePipe.LargeBudget = 128 * 1024;
            for (var round = 0; round < 200; round++)
            {
                var pipes = new SplicePipe?[Renters];
                using var start = new Barrier(Renters);
                var threads = Enumerable.Range(0, Renters).Select(i => new Thread(() =>
                {
                    start.SignalAndWait();
                    pipes[i] = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out _);
                })).ToList();
                threads.ForEach(thread => thread.Start());
                threads.ForEach(thread => thread.Join());
                try
                {
                    Assert.All(pipes, pipe => Assert.NotNull(pipe));
                    var large = pipes.Where(pipe => pipe!.Capacity > SplicePipe.DefaultCapacity).Sum(pipe => (long)pipe!.Capacity);
                    Assert.True(large <= SplicePipe.LargeBudget, $"Round {round}: {large} bytes of large pipes against a budget of {SplicePipe.LargeBudget}.");
                    Assert.Equal(pipes.Sum(pipe => (long)pipe!.Capacity), SplicePipe.OpenCapacity);
                }
                finally
                {
                    Array.ForEach(pipes, pipe => pipe?.Dispose());
                }
            }
            Assert.Equal(0, SplicePipe.OpenCapacity);
        }
        finally
        {
            SplicePipe.CloseSpares();
            (SplicePipe.MaxOpen, SplicePipe.LargeBudget) = (cap, budget);
        }
    }

    [Fact]
    public void A_size_above_the_kernels_pipe_max_size_gets_the_largest_pipe_it_allows_not_the_default()
    {
        if (!OperatingSystem.IsLinux()
            || !long.TryParse(File.ReadAllText("/proc/sys/fs/pipe-max-size").Trim(), out var maxSize)
            || maxSize > 64 * 1024 * 1024
            || maxSize < SplicePipe.DefaultCapacity)
        {
            return;
        }
        SplicePipe.CloseSpares();
        var budget = SplicePipe.LargeBudget;
        SplicePipe.LargeBudget = long.MaxValue / 4;
        try
        {
            // pipe-max-size binds only a process without CAP_SYS_RESOURCE, as a relay running as its own user is.
            // Capabilities belong to a thread: this one drops it for its own short life.
            var capacity = OnThreadWithout([CapSysResource], () =>
            {
                var pipe = SplicePipe.Rent((int)maxSize * 4, out _);
                Assert.NotNull(pipe);
                pipe.Dispose();
                return pipe.Capacity;
            });
            Assert.Equal(maxSize, capacity);
        }
        finally
        {
            SplicePipe.LargeBudget = budget;
            SplicePipe.CloseSpares();
        }
    }

    [Fact]
    public void Past_the_users_pipe_quota_no_pipe_is_rented_rather_than_one_of_two_pages()
    {
        if (!OperatingSystem.IsLinux()
            || !long.TryParse(File.ReadAllText("/proc/sys/fs/pipe-user-pages-soft").Trim(), out var softPages)
            || softPages == 0
            || softPages * Environment.SystemPageSize > 256L * 1024 * 1024
            || File.ReadAllText("/proc/sys/fs/pipe-user-pages-hard").Trim() != "0"
            || !(HasCapability(CapSysResource) || HasCapability(CapSysAdmin)))
        {
            // No quota, one too large to fill here, a hard limit (pipe2 would fail instead), or a test process the
            // quota binds, which could not fill it with large pipes.
            return;
        }
        SplicePipe.CloseSpares();
        var (cap, budget) = (SplicePipe.MaxOpen, SplicePipe.LargeBudget);
        var hog = new List<SplicePipe>();
        try
        {
            // Fill this user's quota with 1 MiB pipes: the kernel charges their pages to the user, privileged or not,
            // and lets a privileged thread enlarge pipes past it. For these few milliseconds, other processes of this
            // user that the quota binds get two-page pipes too (a relay counts that as no_pipe and copies).
            SplicePipe.LargeBudget = long.MaxValue / 4;
            SplicePipe.MaxOpen = 10_000;
            for (long pages = 0; pages <= softPages;)
            {
                var pipe = SplicePipe.Rent(1024 * 1024, out var errno);
                Assert.True(pipe is not null, $"No pipe to fill the quota with (errno {errno}).");
                hog.Add(pipe);
                pages += pipe.Capacity / Environment.SystemPageSize;
            }
            // The large-pipe budget spent, as it is long before the quota is reached.
            SplicePipe.LargeBudget = 0;

            // A process the quota binds (without CAP_SYS_RESOURCE and CAP_SYS_ADMIN) is given a pipe of two pages.
            var (rented, errnoSeen) = RentUnprivileged();
            Assert.Null(rented);
            Assert.Equal(LinuxSplice.ENOBUFS, errnoSeen);
            Assert.Equal(hog.Count, SplicePipe.OpenCount);
            // Nor would the kernel enlarge it for such a process, with room in the budget or not.
            SplicePipe.LargeBudget = long.MaxValue / 4;
            (rented, errnoSeen) = RentUnprivileged();
            Assert.Null(rented);
            Assert.Equal(LinuxSplice.ENOBUFS, errnoSeen);
            Assert.Equal(hog.Count, SplicePipe.OpenCount);

            // Once the quota has room again, pipes come at the kernel's default size (the budget spent again).
            SplicePipe.LargeBudget = 0;
            hog.ForEach(pipe => pipe.Dispose());
            hog.Clear();
            var (again, _) = RentUnprivileged();
            Assert.Equal(SplicePipe.DefaultCapacity, again);
        }
        finally
        {
            hog.ForEach(pipe => pipe.Dispose());
            SplicePipe.CloseSpares();
            (SplicePipe.MaxOpen, SplicePipe.LargeBudget) = (cap, budget);
        }
    }

    /// <summary>
    /// Whether a pipe of <see cref="PumpOptions.DefaultPipeSize"/> is granted in full here: not with 64 KiB pages (the
    /// default pipe is then 1 MiB), nor with pipe-max-size below 1 MiB for a test process it binds. Keeps no pipe.
    /// </summary>
    private static bool FullSizePipesGranted()
    {
        using (var probe = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out _))
        {
            if (probe?.Capacity != PumpOptions.DefaultPipeSize)
            {
                return false;
            }
        }
        SplicePipe.CloseSpares();
        return true;
    }

    /// <summary>Rents a pipe on a thread the pipe quota binds, and closes it: its capacity (null: none) and the errno.</summary>
    private static (int? Capacity, int Errno) RentUnprivileged() => OnThreadWithout([CapSysResource, CapSysAdmin], () =>
    {
        var pipe = SplicePipe.Rent(PumpOptions.DefaultPipeSize, out var errno);
        var capacity = pipe?.Capacity;
        pipe?.Dispose();
        return (capacity, errno);
    });

    private const int CapSysResource = 24;
    private const int CapSysAdmin = 21;

    /// <summary>Runs <paramref name="work"/> on a thread of its own that has dropped <paramref name="capabilities"/> first.</summary>
    private static T OnThreadWithout<T>(int[] capabilities, Func<T> work)
    {
        T result = default!;
        Exception? failed = null;
        var thread = new Thread(() =>
        {
            try
            {
                WithoutCapabilities(capabilities);
                result = work();
            }
            catch (Exception e)
            {
                failed = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(Timeouts.Default), "The thread did not finish.");
        Assert.Null(failed);
        return result;
    }

    /// <summary>Whether the calling thread has <paramref name="capability"/> in its effective set.</summary>
    private static bool HasCapability(int capability) =>
        ThreadCapabilities(out _) is { } data && (data[capability / 32 * 3] & (1u << (capability % 32))) != 0;

    /// <summary>Drops <paramref name="capabilities"/> from the calling thread's effective set (capset(2) acts on one thread).</summary>
    private static void WithoutCapabilities(int[] capabilities)
    {
        var data = ThreadCapabilities(out var header);
        Assert.NotNull(data);
        foreach (var capability in capabilities)
        {
            data[capability / 32 * 3] &= ~(1u << (capability % 32));
        }
        Assert.Equal(0, CapSet(ref header, data));
    }

    /// <summary>
    /// The calling thread's capability sets, as capget(2) gives them (null when it fails), and the header to set them
    /// with: _LINUX_CAPABILITY_VERSION_3, two structs of three 32-bit sets (effective, permitted, inheritable).
    /// </summary>
    private static uint[]? ThreadCapabilities(out CapHeader header)
    {
        header = new CapHeader { Version = 0x20080522, Pid = 0 };
        var data = new uint[6];
        return CapGet(ref header, data) == 0 ? data : null;
    }

    private struct CapHeader
    {
        public uint Version;
        public int Pid;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static extern int CapGet(ref CapHeader header, [System.Runtime.InteropServices.In, System.Runtime.InteropServices.Out] uint[] data);

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static extern int CapSet(ref CapHeader header, uint[] data);

    [Fact]
    public async Task A_full_destination_socket_is_waited_for_without_copying_bytes_out_of_the_pipe()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using var _ = new Disposer(app, relayIn, relayOut, server);
        // Small buffers on the way out: with the reader asleep, the pump's splice out is refused within
        // the first pipe-full, and it has to wait for room again and again as the reader catches up.
        relayOut.SendBufferSize = 16 * 1024;
        server.ReceiveBufferSize = 16 * 1024;
        var data = new byte[4 * 1024 * 1024];
        new Random(7).NextBytes(data);
        var copiedBefore = SplicePipe.CopiedOutBytes;
        var pump = BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut));
        var sending = Task.Run(async () => { await Loopback.SendAllAsync(app, data); app.Shutdown(SocketShutdown.Send); });

        await Task.Delay(200);
        var received = await Loopback.ReadToEndAsync(server, limit: data.Length);
        await sending.WaitAsync(Timeouts.Default);
        server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);

        Assert.Equal(data, received);
        Assert.Equal(PumpPath.Splice, result.ClientToUpstreamPath);
        Assert.Equal(data.Length, result.ClientToUpstreamBytes);
        Assert.Equal(copiedBefore, SplicePipe.CopiedOutBytes);
    }

    [Fact]
    public async Task Many_runs_ending_every_way_leave_no_descriptor_behind()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        // Warm up: the runtime opens its own descriptors (epoll, event pipes) on first use.
        await RunOnce(0);
        SplicePipe.CloseSpares();
        var before = SocketsAndPipes();
        var registeredBefore = SocketReadiness.Registered;

        for (var i = 0; i < 120; i++)
        {
            await RunOnce(i);
        }

        SplicePipe.CloseSpares();
        Assert.Equal(0, SplicePipe.OpenCount);
        // Only sockets and pipes: the runtime opens files of its own (assemblies, symbols) at any time.
        // Fewer is fine (earlier tests' child-process pipes are finalized meanwhile); one leak per run
        // would add hundreds, and stay. A few more for a while is not one: what earlier tests left running
        // (a lingering close, a reading of this host's interfaces over netlink) comes and goes, so the
        // counts are waited for. Every socket the runs waited on gives its readiness registration back.
        (int Sockets, int Pipes) after = default;
        await Timeouts.WaitUntilAsync(
            () => (after = SocketsAndPipes()).Sockets <= before.Sockets && after.Pipes <= before.Pipes && SocketReadiness.Registered <= registeredBefore,
            () => $"sockets {after.Sockets} (at most {before.Sockets}), pipes {after.Pipes} (at most {before.Pipes}), "
                + $"registered {SocketReadiness.Registered} (at most {registeredBefore})");
    }

    /// <summary>One run that ends in one of four ways, with bytes in flight in the pipes when it can.</summary>
    private static async Task RunOnce(int way)
    {
        var (app, relayIn) = await Loopback.ConnectedPairAsync();
        var (relayOut, server) = await Loopback.ConnectedPairAsync();
        using var _ = new Disposer(app, relayIn, relayOut, server);
        var clock = new ManualTimeProvider();
        using var cts = new CancellationTokenSource();
        var options = new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock };
        var client = new SocketConnection(relayIn);
        var upstream = new SocketConnection(relayOut);
        var pump = BytePump.RunAsync(client, upstream, options, cancellationToken: cts.Token);

        // The server does not read: the upstream send buffer fills and the pipe stays loaded.
        var appSends = Task.Run(async () =>
        {
            try
            {
                await Loopback.SendAllAsync(app, new byte[4 * 1024 * 1024], TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
            {
                // The run ended under it.
            }
        });
        await Loopback.SendAllAsync(server, new byte[1000]);
        Assert.Equal(1000, (await Loopback.ReadToEndAsync(app, limit: 1000)).Length);

        var expected = (way % 4) switch
        {
            0 => Complete(app, server),
            1 => Reset(server),
            2 => Cancel(cts),
            _ => await Idle(clock, pump),
        };
        var ended = await Task.WhenAny(pump, Task.Delay(Timeouts.Default));
        Assert.True(ended == pump, $"The run that should end {expected} did not end.");
        Assert.Equal(expected, pump.Result.End);
        relayIn.Dispose();
        relayOut.Dispose();
        app.Dispose();
        await appSends.WaitAsync(Timeouts.Default);
        await client.DisposeAsync();
        await upstream.DisposeAsync();
    }

    private static PumpEnd Complete(Socket app, Socket server)
    {
        // Drain what the app sent, then both sides finish.
        _ = Task.Run(() => Loopback.ReadToEndAsync(server, timeout: TimeSpan.FromSeconds(10)));
        app.Shutdown(SocketShutdown.Both);
        server.Shutdown(SocketShutdown.Send);
        return PumpEnd.Completed;
    }

    private static PumpEnd Reset(Socket server)
    {
        server.LingerState = new LingerOption(true, 0);
        server.Close();
        return PumpEnd.Failed;
    }

    private static PumpEnd Cancel(CancellationTokenSource cts)
    {
        cts.Cancel();
        return PumpEnd.Canceled;
    }

    private static async Task<PumpEnd> Idle(ManualTimeProvider clock, Task<PumpResult> pump)
    {
        // Bytes may still be trickling into the pipe while the clock moves: let time pass until nothing has.
        for (var i = 0; i < 100 && !pump.IsCompleted; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(11));
            await Task.WhenAny(pump, Task.Delay(20));
        }
        return PumpEnd.IdleTimeout;
    }

    /// <summary>Open descriptors of this process that are sockets or pipes, e.g. (sockets 2, pipes 9).</summary>
    private static (int Sockets, int Pipes) SocketsAndPipes()
    {
        var targets = OpenDescriptors.Targets("self");
        return (targets.Count(t => t.StartsWith("socket:", StringComparison.Ordinal)), targets.Count(t => t.StartsWith("pipe:", StringComparison.Ordinal)));
    }

    private sealed class Disposer(params Socket[] sockets) : IDisposable
    {
        public void Dispose()
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }
}
