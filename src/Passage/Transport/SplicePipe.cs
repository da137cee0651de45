using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using static Passage.Transport.LinuxSplice;

namespace Passage.Transport;

/// <summary>
/// A kernel pipe that one direction of the <see cref="BytePump"/> splices through:
/// source socket → [write end | pipe | read end] → destination socket. Used by one direction at a
/// time, so it needs no locking. Both ends are closed by <see cref="Dispose"/>, on every path.
/// </summary>
/// <remarks>
/// Each call is non-blocking (SPLICE_F_NONBLOCK on the pipe side; the runtime has set O_NONBLOCK on
/// the socket, which the caller checks), so nothing here parks a thread-pool thread. The socket's
/// descriptor is pinned with <see cref="SafeHandle.DangerousAddRef"/> for the length of each call, so
/// a concurrent abort cannot close it, and its number be reused, under a running splice.
/// </remarks>
internal sealed class SplicePipe : IDisposable
{
    private const uint Flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

    /// <summary>
    /// Empty pipes kept for the next burst, process-wide. Creating and closing a pipe each time a
    /// direction parks costs four syscalls and, measured, a third of the throughput; keeping a few
    /// (not one per connection) keeps that cost away while an idle connection still holds none.
    /// Small, because a pipe's whole capacity counts against the user's pipe quota
    /// (/proc/sys/fs/pipe-user-pages-soft) and the budget for large pipes whether or not it holds data.
    /// </summary>
    private static readonly ConcurrentQueue<SplicePipe> s_spare = new();
    private static readonly int s_spareLimit = Math.Max(2, Environment.ProcessorCount * 2);
    private static int s_spareCount;
    private static long s_open;
    // Two descriptors a pipe, within the share of the open-file limit set aside for pipes.
    private static long s_maxOpen = OpenFileLimit.Current is { } limit ? Math.Max(8, OpenFileLimit.PipeShare(limit) / 2) : long.MaxValue;
    private static long s_openBytes;
    private static long s_copiedOut;

    /// <summary>
    /// How many bytes of pipes this process lets be open at once before it stops asking for more than
    /// the kernel's default size (see <see cref="LargePipeBudget"/> and <see cref="LargeSize"/>).
    /// </summary>
    private static long s_largePipeBudget = LargePipeBudget(
        Environment.IsPrivilegedProcess, ReadSoftLimit(), Environment.SystemPageSize);

    /// <summary>The kernel's default pipe size, 16 pages (64 KiB with 4 KiB pages); no pipe is used smaller.</summary>
    internal static readonly int DefaultCapacity = 16 * Environment.SystemPageSize;

    private readonly int _readEnd;
    private readonly int _writeEnd;
    private readonly int _requestedSize;
    // The size asked of the kernel at opening (0: none), smaller than requested while the budget was filling.
    private readonly int _askedSize;
    private int _disposed;

    private SplicePipe(int readEnd, int writeEnd, int requestedSize, int askedSize, int capacity)
    {
        _readEnd = readEnd;
        _writeEnd = writeEnd;
        _requestedSize = requestedSize;
        _askedSize = askedSize;
        Capacity = capacity;
        // s_open and s_openBytes were counted by Rent, which reserves the slot and the bytes before it opens the pipe.
    }

    /// <summary>Pipes open right now in this process, spares included (for leak checks in tests).</summary>
    public static long OpenCount => Interlocked.Read(ref s_open);

    /// <summary>
    /// Bytes of capacity of the pipes open right now (spares included): what the kernel charges this process's
    /// user against fs.pipe-user-pages-soft, empty or not. A pipe being opened counts from before its opening, at the
    /// size asked, until the kernel says what it gave.
    /// </summary>
    public static long OpenCapacity => Interlocked.Read(ref s_openBytes);

    /// <summary>
    /// How many pipes this process may hold open at once, spares included: half the share of the open-file limit
    /// set aside for pipes (<see cref="OpenFileLimit.PipeShare"/>), at least 8. Tests lower it to run a direction
    /// out of pipes without exhausting the process's descriptors.
    /// </summary>
    internal static long MaxOpen
    {
        get => Interlocked.Read(ref s_maxOpen);
        set => Interlocked.Exchange(ref s_maxOpen, value);
    }

    /// <summary>
    /// The bytes of pipe capacity up to which pipes are asked to be larger than the kernel's default
    /// (<see cref="LargePipeBudget"/>, read at start). Tests set it to run the budget out, or to leave it out of the way.
    /// </summary>
    internal static long LargeBudget
    {
        get => Interlocked.Read(ref s_largePipeBudget);
        set => Interlocked.Exchange(ref s_largePipeBudget, value);
    }

    /// <summary>Closes every spare pipe (tests call it before counting descriptors).</summary>
    public static void CloseSpares()
    {
        while (s_spare.TryDequeue(out var pipe))
        {
            Interlocked.Decrement(ref s_spareCount);
            pipe.Dispose();
        }
    }

    /// <summary>
    /// Bytes that left a pipe through <see cref="ReadInto"/> since the process started: copied to user
    /// space to wait for a destination without the relay's own readiness to drain, or to feed one that
    /// refuses spliced pages. The share of spliced traffic that was copied after all.
    /// </summary>
    public static long CopiedOutBytes => Interlocked.Read(ref s_copiedOut);

    /// <summary>How many bytes the pipe can hold.</summary>
    public int Capacity { get; }

    /// <summary>Bytes spliced in and not yet spliced or read out.</summary>
    public int Count { get; private set; }

    /// <summary>
    /// Opens a pipe and asks for <paramref name="requestedSize"/> bytes of room (the kernel rounds up
    /// to a power of two pages), or less as this process's open pipes fill the budget for large pipes
    /// (<see cref="LargeSize"/>), or nothing past it (<see cref="LargePipeBudget"/>). A size the kernel refuses
    /// (above /proc/sys/fs/pipe-max-size for a process without CAP_SYS_RESOURCE, or past the user's pipe quota for one
    /// without CAP_SYS_RESOURCE and CAP_SYS_ADMIN) is asked again at half, down to 128 KiB, and past that the pipe keeps
    /// the size the kernel gave it.
    /// Returns null with the errno when no pipe can be had (EMFILE, ENFILE), EMFILE too when this process's
    /// pipes already fill their share of the open-file limit (<see cref="OpenFileLimit.PipeShare"/>), and ENOBUFS
    /// when the kernel would give only a pipe smaller than its default (<see cref="DefaultCapacity"/>).
    /// </summary>
    public static unsafe SplicePipe? Rent(int requestedSize, out int errno)
    {
        errno = 0;
        while (s_spare.TryDequeue(out var spare))
        {
            Interlocked.Decrement(ref s_spareCount);
            if (spare._requestedSize == requestedSize && spare.SizedForNow())
            {
                return spare;
            }
            spare.Dispose();
        }
        // Reserved before the pipe is opened, so that directions renting at once cannot pass the cap together.
        if (Interlocked.Increment(ref s_open) > Interlocked.Read(ref s_maxOpen))
        {
            Interlocked.Decrement(ref s_open);
            errno = EMFILE;
            return null;
        }
        int* fds = stackalloc int[2];
        if (Pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0)
        {
            errno = Marshal.GetLastPInvokeError();
            Interlocked.Decrement(ref s_open);
            return null;
        }
        if (OpenFileLimit.InHeadroom(Math.Max(fds[0], fds[1])))
        {
            // The last descriptors are the runtime's (OpenFileLimit.Headroom): as if pipe2(2) had failed.
            Close(fds[0]);
            Close(fds[1]);
            Interlocked.Decrement(ref s_open);
            errno = EMFILE;
            return null;
        }
        var size = ReserveBytes(requestedSize, out var reserved);
        var capacity = Enlarge(fds[1], size);
        if (capacity > 0 && capacity < DefaultCapacity)
        {
            // Smaller than the kernel's default: this user is past fs.pipe-user-pages-soft (new pipes get two
            // pages) or pipe-max-size is below the default. Splicing 8 KiB at a time moved half what the copy
            // path moves (bench/RESULTS.md, "Pipes past the user's quota"), so this burst is copied instead.
            Close(fds[0]);
            Close(fds[1]);
            Interlocked.Decrement(ref s_open);
            Interlocked.Add(ref s_openBytes, -reserved);
            errno = ENOBUFS;
            return null;
        }
        errno = 0;
        // A pipe always holds at least one page; 4096 is the floor if the size cannot be read.
        capacity = capacity > 0 ? capacity : 4096;
        Interlocked.Add(ref s_openBytes, capacity - reserved);
        return new SplicePipe(fds[0], fds[1], requestedSize, size, capacity);
    }

    /// <summary>
    /// Picks the size to ask of a new pipe (<see cref="LargeSize"/>) and counts it as open in the same step, so that
    /// directions renting at once cannot each see the same room left in the budget and pass it together. The
    /// reservation is the size asked, or the kernel's default when none is; the caller corrects it to the capacity
    /// the kernel gave, or takes it back.
    /// </summary>
    private static int ReserveBytes(int requestedSize, out long reserved)
    {
        while (true)
        {
            var open = Interlocked.Read(ref s_openBytes);
            var size = LargeSize(requestedSize, open, LargeBudget);
            reserved = size > 0 ? size : DefaultCapacity;
            if (Interlocked.CompareExchange(ref s_openBytes, open + reserved, open) == open)
            {
                return size;
            }
        }
    }

    /// <summary>
    /// Asks the kernel to make the pipe <paramref name="size"/> bytes (0: leave it), and half that each time it
    /// refuses with EPERM, while that is more than its default of 16 pages. A relay without CAP_SYS_RESOURCE on a
    /// host whose pipe-max-size is below the wanted size thus gets the largest pipe allowed rather than the default.
    /// The kernel also refuses to enlarge an unprivileged user's pipe past fs.pipe-user-pages-soft: then the pipe,
    /// born with two pages, is left as it is at once (the caller does not use it). Returns the capacity the pipe has.
    /// </summary>
    private static int Enlarge(int writeEnd, int size)
    {
        for (var ask = size; ask > DefaultCapacity; ask /= 2)
        {
            var granted = Fcntl(writeEnd, F_SETPIPE_SZ, ask);
            if (granted > 0)
            {
                return granted;
            }
            if (Marshal.GetLastPInvokeError() != EPERM)
            {
                break;
            }
            if (ask == size && Fcntl(writeEnd, F_GETPIPE_SZ, 0) is var born && born < DefaultCapacity)
            {
                // Born small: the user is past its quota, and no smaller ask would be granted either.
                return born;
            }
        }
        return Fcntl(writeEnd, F_GETPIPE_SZ, 0);
    }

    /// <summary>
    /// True when <paramref name="socket"/>'s descriptor is in non-blocking mode (a
    /// <see cref="SocketConnection"/> puts it so, as does the runtime's first async operation).
    /// </summary>
    public static bool IsNonBlocking(Socket socket)
    {
        using var socketFd = new SocketDescriptor(socket);
        var flags = Fcntl(socketFd.Fd, F_GETFL, 0);
        return flags >= 0 && (flags & O_NONBLOCK) != 0;
    }

    /// <summary>
    /// Splices what <paramref name="source"/> has (up to the room left) into the pipe. Returns the
    /// bytes moved, 0 at end of stream, or the negated errno (EAGAIN: nothing to read, or no room).
    /// </summary>
    public long FillFrom(Socket source)
    {
        var result = SpliceSocket(source, toSocket: false, (nuint)(Capacity - Count));
        if (result > 0)
        {
            Count += (int)result;
        }
        return result;
    }

    /// <summary>
    /// Splices what the pipe holds into <paramref name="destination"/>. Returns the bytes moved or the
    /// negated errno (EAGAIN: the socket's send buffer is full).
    /// </summary>
    public long DrainTo(Socket destination)
    {
        var result = SpliceSocket(destination, toSocket: true, (nuint)Count);
        if (result > 0)
        {
            Count -= (int)result;
        }
        return result;
    }

    /// <summary>Reads (copies) up to <paramref name="length"/> bytes from the head of the pipe. Returns the count or the negated errno.</summary>
    public unsafe int ReadInto(byte[] buffer, int length)
    {
        nint read;
        fixed (byte* start = buffer)
        {
            do
            {
                read = Read(_readEnd, start, (nuint)Math.Min(length, buffer.Length));
            }
            while (read < 0 && Marshal.GetLastPInvokeError() == EINTR);
        }
        if (read < 0)
        {
            return -Marshal.GetLastPInvokeError();
        }
        Count -= (int)read;
        Interlocked.Add(ref s_copiedOut, read);
        return (int)read;
    }

    private unsafe long SpliceSocket(Socket socket, bool toSocket, nuint length)
    {
        // Throws ObjectDisposedException once the socket is closed: the fd is never used stale.
        using var socketFd = new SocketDescriptor(socket);
        var fd = socketFd.Fd;
        nint moved;
        do
        {
            moved = toSocket
                ? Splice(_readEnd, null, fd, null, length, Flags)
                : Splice(fd, null, _writeEnd, null, length, Flags);
        }
        while (moved < 0 && Marshal.GetLastPInvokeError() == EINTR);
        return moved >= 0 ? moved : -Marshal.GetLastPInvokeError();
    }

    /// <summary>
    /// Gives the pipe back: kept as a spare when it is empty and there is room, closed otherwise
    /// (a pipe that still holds bytes of a failed run is never reused). A pipe made smaller while the budget
    /// for large pipes was filling is closed too once a new one would be larger, so that the spares do not
    /// keep the sizes of a busy moment.
    /// </summary>
    public void Return()
    {
        if (Count == 0 && Volatile.Read(ref _disposed) == 0 && SizedForNow())
        {
            if (Interlocked.Increment(ref s_spareCount) <= s_spareLimit)
            {
                s_spare.Enqueue(this);
                return;
            }
            Interlocked.Decrement(ref s_spareCount);
        }
        Dispose();
    }

    /// <summary>Whether this pipe was asked to be at least as large as a new one would be now.</summary>
    /// <remarks>
    /// What was asked, not what was granted: a pipe the kernel capped (pipe-max-size) is as large as a new one would be.
    /// One capped because the user's quota was nearly spent stays a spare at that size once it frees; that is rare, and
    /// the spares are few.
    /// </remarks>
    private bool SizedForNow() =>
        _askedSize >= LargeSize(_requestedSize, Interlocked.Read(ref s_openBytes) - Capacity, LargeBudget);

    /// <summary>Closes both ends; bytes still inside are dropped. Idempotent.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        Close(_readEnd);
        Close(_writeEnd);
        Interlocked.Decrement(ref s_open);
        Interlocked.Add(ref s_openBytes, -Capacity);
    }

    /// <summary>
    /// The bytes of pipe capacity up to which pipes are made larger than the kernel's default (64 KiB), for two
    /// reasons. The kernel charges a pipe's whole size to its user, empty or not, and once an unprivileged user's
    /// pipes pass fs.pipe-user-pages-soft (16,384 pages, 64 MiB, by default) it refuses to enlarge pipes and gives
    /// new ones two pages: a busy relay running as its own user (the systemd units do) would then splice 8 KiB at
    /// a time. And a direction waiting for a slow destination keeps its pipe full: those pages are counted
    /// neither against the sockets' memory (tcp_mem) nor against the process, so without a cap, thousands of
    /// connections whose readers stall would pin a large pipe each. So large pipes may take a quarter of that
    /// limit, for a privileged process too (which the kernel does not limit); past it, pipes keep the default
    /// size. With the default limit that is 16 MiB: 37 directions flowing at once on large pipes
    /// (<see cref="LargeSize"/>), and about 800 in all before an unprivileged relay's new pipes shrink to two
    /// pages. When the limit is 0 (off), or cannot be read by a privileged process, a quarter of the default
    /// (16 MiB); none larger than the default when an unprivileged process cannot read it.
    /// </summary>
    internal static long LargePipeBudget(bool privileged, string? softLimitPages, int pageSize)
    {
        const long DefaultBudget = 16384L * 4096 / 4;
        if (!ulong.TryParse(softLimitPages, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pages))
        {
            return privileged ? DefaultBudget : 0;
        }
        if (pages == 0)
        {
            return DefaultBudget;
        }
        // A limit too large to count in bytes (the kernel takes up to 2^64 - 1 pages) is no limit that matters.
        return pages <= (ulong)(long.MaxValue / pageSize) ? (long)pages * pageSize / 4 : long.MaxValue / 4;
    }

    /// <summary>
    /// The size to ask of a new pipe (0: leave the kernel's default), given the bytes of pipes open and the
    /// budget for large ones: <paramref name="wanted"/> while the budget has room for eight more such pipes,
    /// halved as it fills, down to 128 KiB, and nothing once it is spent or when that is no larger than the
    /// kernel's default (16 pages). The first pipes (the usual case: a few bulk transfers at a time) get the full
    /// size, and more directions get a large pipe in all than at one fixed size: with a 16 MiB budget and 1 MiB
    /// wanted, 9 pipes of 1 MiB, 7 of 512 KiB, 7 of 256 KiB and 14 of 128 KiB.
    /// </summary>
    internal static int LargeSize(int wanted, long openBytes, long budget)
    {
        const int Smallest = 128 * 1024;
        var free = budget - openBytes;
        var size = wanted;
        while (size > Smallest && (long)size * 8 > free)
        {
            size /= 2;
        }
        // Asking for no more than the kernel's default (16 pages) would only shrink a pipe on large-page kernels.
        return size <= free && size > DefaultCapacity ? size : 0;
    }

    private static string? ReadSoftLimit()
    {
        try
        {
            return File.ReadAllText("/proc/sys/fs/pipe-user-pages-soft").Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
