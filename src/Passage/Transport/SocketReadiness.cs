using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static Passage.Transport.LinuxSplice;

namespace Passage.Transport;

/// <summary>Told by <see cref="SocketReadiness"/> that a socket it watches became ready.</summary>
internal interface IReadinessTarget
{
    /// <summary>
    /// Called on the readiness thread with the epoll events that fired (edge-triggered: what changed). Runs
    /// the woken waiter's continuation right here when <see cref="SocketReadiness.Inline"/> (that is
    /// short work: move some bytes, parse a head), else hands it to the thread pool.
    /// </summary>
    void OnReady(uint events);
}

/// <summary>
/// Readiness of plain sockets on Linux: epoll sets with a thread each (one, or one per core, see
/// <see cref="Inline"/>), edge-triggered, so that a socket waiting for data holds nothing but
/// its registration.
/// </summary>
/// <remarks>
/// <para>Why not the runtime's own asynchronous socket calls: the first one on a socket gives it an
/// async context, event args, an operation object and a callback for the rest of its life (about
/// 900 bytes per socket, measured with bench/heapwalk), and a relayed connection has two sockets.
/// A relay holding tens of thousands of idle connections pays that for nothing; here a waiting
/// socket costs its registration slot and one small waiter.</para>
/// <code>
///   Register(target) ─► slot              (once per socket; Unregister frees it, before the close)
///   Watch(slot, fd, IN[|OUT]) ─► epoll_ctl (EPOLLET: once for reading, once more if a send ever waits)
///   readiness thread: epoll_wait ─► slot ─► target.OnReady(events) ─► waiter (inline or thread pool)
/// </code>
/// <para>A report may come late (a slot freed and taken again between the kernel's report and its
/// delivery is caught by the generation in the event's data, and a report may describe data that
/// a call has taken meanwhile): every waiter treats readiness as a hint and tries its call again,
/// so a spurious report costs one syscall and nothing else.</para>
/// </remarks>
internal static unsafe partial class SocketReadiness
{
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLPRI = 0x002;
    public const uint EPOLLOUT = 0x004;
    public const uint EPOLLERR = 0x008;
    public const uint EPOLLHUP = 0x010;
    public const uint EPOLLRDHUP = 0x2000;
    private const uint EPOLLET = 1u << 31;
    private const int EPOLL_CTL_ADD = 1;
    private const int EPOLL_CTL_MOD = 3;
    private const int EPOLL_CLOEXEC = 0x80000;
    private const int MaxEvents = 256;

    // struct epoll_event is packed on x86-64 (12 bytes: events, then the 64-bit data at offset 4)
    // and naturally aligned elsewhere (16 bytes, data at offset 8).
    private static readonly int s_eventSize = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 12 : 16;
    private static readonly int s_dataOffset = RuntimeInformation.ProcessArchitecture == Architecture.X64 ? 4 : 8;

    private static readonly Lock s_slotsLock = new();
    private static Entry[] s_slots = new Entry[1024];
    private static int[] s_free = new int[1024];
    private static int s_freeCount;
    private static int s_used;
    private static uint s_generation;
    private static long s_reports;
    private static uint s_nextSet;

    // A registration: the slot (low 24 bits) and the epoll set (next 8) in the low word, the slot's
    // generation in the high word.
    private const int SetShift = 24;
    private const uint SlotMask = (1u << SetShift) - 1;

    // One more than the epoll set this thread waits on: 0 on every thread but the readiness threads.
    [ThreadStatic]
    private static int t_set;

    /// <summary>
    /// Whether a waiter's continuation runs right on the readiness thread that heard of it, as the
    /// runtime's own socket completions do under the same switch (which <c>passage</c> turns on):
    /// one thread hop less per wake-up. Then there is one readiness thread per core, each with its
    /// own epoll set, and sockets are spread over them; otherwise one thread hands every wake-up to
    /// the thread pool.
    /// </summary>
    public static readonly bool Inline = Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS") == "1";

    private static readonly int[] s_epolls = Start();

    /// <summary>True where this is used instead of the runtime's asynchronous socket calls: on Linux, once its epoll sets and threads are up.</summary>
    public static bool IsAvailable => s_epolls.Length > 0;

    /// <summary>Reports delivered since the process started: a check that nothing is reported over and over.</summary>
    public static long Reports => Volatile.Read(ref s_reports);

    /// <summary>Registered sockets right now: a check that every registration was given back.</summary>
    public static int Registered
    {
        get
        {
            lock (s_slotsLock)
            {
                return s_used - s_freeCount;
            }
        }
    }

    private struct Entry
    {
        public IReadinessTarget? Target;
        public uint Generation;
    }

    /// <summary>A slot for <paramref name="target"/>, to be watched with <see cref="Watch"/> and freed with <see cref="Unregister"/>.</summary>
    /// <remarks>
    /// The socket joins the epoll set of the readiness thread this runs on, if it runs on one, else the
    /// sets in turn. The two sockets of a relayed connection are given one set explicitly
    /// (<see cref="SocketConnection.KeepTogether"/>): both are often registered from the thread that
    /// accepted and dialed, and one connection should keep to one thread, so that its wake-ups do not
    /// hop between threads (which, on a busy machine, each may have to wait to be scheduled).
    /// </remarks>
    public static ulong Register(IReadinessTarget target) => Register(target, ChooseSet());

    /// <summary>
    /// The epoll set a socket registered now would join: the one of the readiness thread this runs on,
    /// if it runs on one, else the sets in turn.
    /// </summary>
    public static int ChooseSet()
    {
        var set = t_set - 1;
        return set >= 0 ? set : (int)(Interlocked.Increment(ref s_nextSet) % (uint)s_epolls.Length);
    }

    /// <summary>The epoll set of <paramref name="registration"/> (from <see cref="Register(IReadinessTarget, int)"/>).</summary>
    public static int SetOf(ulong registration) => (int)(((uint)registration >> SetShift) & 0xff);

    /// <summary>As <see cref="Register(IReadinessTarget)"/>, in epoll set <paramref name="set"/> (from <see cref="ChooseSet"/>).</summary>
    public static ulong Register(IReadinessTarget target, int set)
    {
        lock (s_slotsLock)
        {
            int slot;
            if (s_freeCount > 0)
            {
                slot = s_free[--s_freeCount];
            }
            else
            {
                if (s_used == s_slots.Length)
                {
                    var grown = new Entry[s_slots.Length * 2];
                    Array.Copy(s_slots, grown, s_slots.Length);
                    Volatile.Write(ref s_slots, grown);
                    Array.Resize(ref s_free, grown.Length);
                }
                if (s_used > SlotMask)
                {
                    throw new InvalidOperationException($"More than {SlotMask + 1} sockets wait for readiness at once.");
                }
                slot = s_used++;
            }
            var generation = ++s_generation;
            s_slots[slot].Generation = generation;
            Volatile.Write(ref s_slots[slot].Target, target);
            return (uint)slot | ((uint)set << SetShift) | ((ulong)generation << 32);
        }
    }

    /// <summary>
    /// Watches <paramref name="socket"/> for <paramref name="events"/> (EPOLLIN, EPOLLOUT or both; errors,
    /// hang-ups, the peer's half-close and its urgent data are always reported), edge-triggered: from now on every change
    /// (data arrived, room to send freed up after a send found none) is reported once, with nobody having
    /// to ask again. The first call for a registration adds the socket to its epoll set
    /// (<paramref name="added"/> false), later ones widen what is watched. Returns 0 or the errno.
    /// </summary>
    /// <remarks>
    /// Edge-triggered rather than one-shot: a one-shot arming costs an epoll_ctl(2) before every wait,
    /// which for a connection that carries small messages back and forth was a third of the relay's
    /// system calls. The price is that a report says only that something changed since the last one:
    /// a waiter must know the socket had nothing for it (an EAGAIN, or a short read) at a count of
    /// reports, and wait only while no report came after (<see cref="SocketConnection"/>).
    /// </remarks>
    public static int Watch(ulong registration, Socket socket, uint events, bool added)
    {
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            return Control(added ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, socketFd.Fd, events | EPOLLRDHUP | EPOLLPRI | EPOLLET, registration);
        }
        catch (ObjectDisposedException)
        {
            return EBADF;
        }
    }

    /// <summary>
    /// Frees the slot, just before the socket is closed (closing its descriptor takes it out of the
    /// epoll set; no EPOLL_CTL_DEL is needed). No report reaches the target after this returns, except
    /// one already on its way (or one from the set the closing socket is still in for a moment), which
    /// the generation turns away.
    /// </summary>
    public static void Unregister(ulong registration)
    {
        var slot = (int)((uint)registration & SlotMask);
        lock (s_slotsLock)
        {
            if (s_slots[slot].Generation != (uint)(registration >> 32))
            {
                return;
            }
            s_slots[slot].Target = null;
            s_slots[slot].Generation = 0;
            s_free[s_freeCount++] = slot;
        }
    }

    /// <summary>epoll_ctl(2) on the set that <paramref name="registration"/> belongs to.</summary>
    private static int Control(int operation, int fd, uint events, ulong registration)
    {
        var ev = stackalloc byte[16];
        *(uint*)ev = events;
        *(ulong*)(ev + s_dataOffset) = registration;
        var epoll = s_epolls[(int)((uint)registration >> SetShift)];
        return EpollCtl(epoll, operation, fd, ev) == 0 ? 0 : Marshal.GetLastPInvokeError();
    }

    private static int[] Start()
    {
        if (!OperatingSystem.IsLinux())
        {
            return [];
        }
        var epolls = new int[Inline ? Math.Min(Environment.ProcessorCount, 1 << (32 - SetShift)) : 1];
        for (var i = 0; i < epolls.Length; i++)
        {
            try
            {
                epolls[i] = EpollCreate1(EPOLL_CLOEXEC);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                return [];
            }
            if (epolls[i] < 0)
            {
                // Out of descriptors at first use: the runtime's calls serve instead.
                for (var j = 0; j < i; j++)
                {
                    Close(epolls[j]);
                }
                return [];
            }
        }
        for (var i = 0; i < epolls.Length; i++)
        {
            var set = i;
            var thread = new Thread(() => Run(epolls[set], set))
            {
                IsBackground = true,
                Name = $"Passage socket readiness {i}",
            };
            thread.UnsafeStart();
        }
        return epolls;
    }

    private static void Run(int epoll, int set)
    {
        t_set = set + 1;
        var buffer = (byte*)NativeMemory.Alloc((nuint)(MaxEvents * s_eventSize));
        var turns = new Queue<Action>();
        if (Inline)
        {
            t_turns = turns;
        }
        while (true)
        {
            // With turns waiting, only look for what became ready meanwhile (and let those go first).
            var count = EpollWait(epoll, buffer, MaxEvents, turns.Count > 0 ? 0 : -1);
            if (count < 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == EINTR)
                {
                    continue;
                }
                // Nothing else can fail with a valid set and buffer; every socket wait would hang.
                Environment.FailFast($"epoll_wait failed (errno {errno}).");
            }
            var slots = Volatile.Read(ref s_slots);
            for (var i = 0; i < count; i++)
            {
                var ev = buffer + (i * s_eventSize);
                var events = *(uint*)ev;
                var data = *(ulong*)(ev + s_dataOffset);
                var slot = (int)((uint)data & SlotMask);
                if (slot >= slots.Length)
                {
                    slots = Volatile.Read(ref s_slots);
                }
                var target = Volatile.Read(ref slots[slot].Target);
                if (target is not null && slots[slot].Generation == (uint)(data >> 32))
                {
                    target.OnReady(events);
                }
            }
            Interlocked.Add(ref s_reports, count);

            // The turns given up before this round; one given up again now waits for the next.
            for (var waiting = turns.Count; waiting > 0; waiting--)
            {
                turns.Dequeue()();
            }
        }
    }

    // The turns given up on this readiness thread (see Yield); null on every other thread.
    [ThreadStatic]
    private static Queue<Action>? t_turns;

    /// <summary>
    /// Gives up the current turn: on a readiness thread the awaiting code goes on after the sockets
    /// that became ready meanwhile on this thread had theirs, with no thread hop; elsewhere it goes on
    /// as after <see cref="Task.Yield"/> (on the thread pool, or the current scheduler). For work that
    /// could otherwise run on without ever waiting, such as a pump whose source always has data.
    /// </summary>
    /// <remarks>
    /// Measured with a TLS tunnel moving bulk data: <see cref="Task.Yield"/> there moved the pump to the
    /// thread pool, whose workers then took turns at it, woke one another and spun in sched_yield.
    /// </remarks>
    public static TurnAwaitable Yield() => default;

    /// <summary>What <see cref="Yield"/> returns.</summary>
    public readonly struct TurnAwaitable : ICriticalNotifyCompletion
    {
        public TurnAwaitable GetAwaiter() => this;

        public bool IsCompleted => false;

        public void GetResult()
        {
        }

        public void OnCompleted(Action continuation) => Task.Yield().GetAwaiter().OnCompleted(continuation);

        public void UnsafeOnCompleted(Action continuation)
        {
            if (t_turns is { } turns)
            {
                turns.Enqueue(continuation);
            }
            else
            {
                Task.Yield().GetAwaiter().UnsafeOnCompleted(continuation);
            }
        }
    }

    /// <summary>recv(2) without waiting: bytes read, 0 at end of stream, or the negated errno (-EAGAIN: nothing there yet).</summary>
    public static nint Receive(Socket socket, Span<byte> buffer) => Transfer(socket, buffer, send: false, flags: 0);

    /// <summary>
    /// recv(2) of one byte with MSG_PEEK, without waiting: whether a read would find something now without
    /// taking it. 1 (data), 0 (end of stream), or the negated errno (-EAGAIN: nothing there yet).
    /// </summary>
    public static nint Peek(Socket socket)
    {
        Span<byte> one = stackalloc byte[1];
        return Peek(socket, one);
    }

    /// <summary>recv(2) with MSG_PEEK, without waiting: as <see cref="Receive"/>, but the bytes stay queued.</summary>
    public static nint Peek(Socket socket, Span<byte> buffer)
    {
        const int MSG_PEEK = 0x2;
        return Transfer(socket, buffer, send: false, flags: MSG_PEEK);
    }

    /// <summary>send(2) without waiting: bytes taken, or the negated errno (-EAGAIN: the send buffer is full).</summary>
    public static nint Send(Socket socket, ReadOnlySpan<byte> data) => Transfer(socket, MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(data), data.Length), send: true, flags: 0);

    private static nint Transfer(Socket socket, Span<byte> buffer, bool send, int flags)
    {
        const int MSG_DONTWAIT = 0x40;
        const int MSG_NOSIGNAL = 0x4000;
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            var fd = socketFd.Fd;
            nint result;
            fixed (byte* p = buffer)
            {
                do
                {
                    result = send
                        ? SendCall(fd, p, (nuint)buffer.Length, flags | MSG_DONTWAIT | MSG_NOSIGNAL)
                        : ReceiveCall(fd, p, (nuint)buffer.Length, flags | MSG_DONTWAIT);
                }
                while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);
            }
            return result >= 0 ? result : -Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            return -EBADF;
        }
    }

    /// <summary>
    /// Puts the descriptor in non-blocking mode with ioctl(FIONBIO) itself. The runtime's
    /// <see cref="Socket.Blocking"/> would create the socket's async context (the state this class
    /// exists to avoid); the runtime goes on taking the socket for a blocking one, which only its
    /// own synchronous send and receive calls would notice, and those are not used on it.
    /// </summary>
    public static void SetNonBlocking(Socket socket)
    {
        const nuint FIONBIO = 0x5421;
        using var socketFd = new SocketDescriptor(socket);
        var on = 1;
        if (Ioctl(socketFd.Fd, FIONBIO, &on) < 0)
        {
            throw ToSocketException(Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>
    /// Bytes in <paramref name="socket"/>'s send queue that its peer has not acknowledged yet (ioctl SIOCOUTQ); -1 when
    /// that cannot be told (not Linux, the socket closed).
    /// </summary>
    public static long Unacknowledged(Socket socket)
    {
        const nuint SIOCOUTQ = 0x5411;
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            var count = 0;
            return Ioctl(socketFd.Fd, SIOCOUTQ, &count) < 0 ? -1 : count;
        }
        catch (ObjectDisposedException)
        {
            return -1;
        }
    }

    /// <summary>connect(2) on a non-blocking socket: 0 when connected at once, else the errno (EINPROGRESS: under way).</summary>
    public static int Connect(Socket socket, SocketAddress address)
    {
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            fixed (byte* raw = address.Buffer.Span)
            {
                int result;
                do
                {
                    result = ConnectCall(socketFd.Fd, raw, (uint)address.Size);
                }
                while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);
                return result == 0 ? 0 : Marshal.GetLastPInvokeError();
            }
        }
        catch (ObjectDisposedException)
        {
            return EBADF;
        }
    }

    /// <summary><paramref name="address"/> as 16 bytes, IPv4 as IPv4-mapped IPv6 (see <see cref="Address16"/>).</summary>
    public static bool ToAddress16(IPAddress address, out Address16 bytes)
    {
        bytes = default;
        Span<byte> written = stackalloc byte[16];
        if (!address.TryWriteBytes(written, out var length))
        {
            return false;
        }
        if (length == 4)
        {
            WriteMapped(written[..4], bytes.Span);
        }
        else
        {
            written.CopyTo(bytes.Span);
        }
        return true;
    }

    /// <summary>
    /// <paramref name="socket"/>'s own endpoint (getsockname(2)) or, with <paramref name="peer"/>, its peer's
    /// (getpeername(2)): the address as 16 bytes (IPv4 as IPv4-mapped IPv6, so either family compares alike) and the
    /// port. Asked of the kernel, nothing kept on the socket. False for a closed or unconnected socket.
    /// </summary>
    public static bool TryGetEndpoint(Socket socket, bool peer, out Address16 address, out int port)
    {
        const ushort AF_INET = 2;
        const ushort AF_INET6 = 10;
        address = default;
        port = 0;
        // sockaddr_in6, the larger of the two: family, port, flow info, 16 address bytes, scope.
        var raw = stackalloc byte[28];
        uint length = 28;
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            if ((peer ? GetPeerName(socketFd.Fd, raw, &length) : GetSockName(socketFd.Fd, raw, &length)) < 0)
            {
                return false;
            }
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
        port = (raw[2] << 8) | raw[3];
        switch (*(ushort*)raw)
        {
            case AF_INET:
                WriteMapped(new ReadOnlySpan<byte>(raw + 4, 4), address.Span);
                return true;
            case AF_INET6:
                new ReadOnlySpan<byte>(raw + 8, 16).CopyTo(address.Span);
                return true;
            default:
                return false;
        }
    }

    /// <summary>Writes an IPv4 address's 4 bytes as the 16 of its IPv4-mapped IPv6 address.</summary>
    private static void WriteMapped(ReadOnlySpan<byte> ipv4, Span<byte> into)
    {
        into[..10].Clear();
        into[10] = 0xff;
        into[11] = 0xff;
        ipv4.CopyTo(into[12..]);
    }

    /// <summary>An IP address as 16 bytes, by value (IPv4 as IPv4-mapped IPv6): a key that compares without allocating.</summary>
    [InlineArray(16)]
    public struct Address16 : IEquatable<Address16>
    {
        private byte _first;

        /// <summary>The 16 bytes.</summary>
        public Span<byte> Span => MemoryMarshal.CreateSpan(ref _first, 16);

        /// <inheritdoc />
        public readonly bool Equals(Address16 other) =>
            MemoryMarshal.CreateReadOnlySpan(in _first, 16).SequenceEqual(MemoryMarshal.CreateReadOnlySpan(in other._first, 16));

        /// <inheritdoc />
        public override readonly bool Equals(object? obj) => obj is Address16 other && Equals(other);

        /// <inheritdoc />
        public override readonly int GetHashCode()
        {
            var hash = new HashCode();
            hash.AddBytes(MemoryMarshal.CreateReadOnlySpan(in _first, 16));
            return hash.ToHashCode();
        }
    }

    // ioctl is variadic in C; a pointer third argument is passed as for a fixed-argument call.
    [LibraryImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static partial int Ioctl(int fd, nuint request, int* argument);

    [LibraryImport("libc", EntryPoint = "getsockname", SetLastError = true)]
    private static partial int GetSockName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "getpeername", SetLastError = true)]
    private static partial int GetPeerName(int fd, byte* address, uint* length);

    [LibraryImport("libc", EntryPoint = "connect", SetLastError = true)]
    private static partial int ConnectCall(int fd, byte* address, uint length);

    /// <summary>The socket's pending error (SO_ERROR), cleared by reading it: 0, or the errno of a failed connect.</summary>
    public static int PendingError(Socket socket)
    {
        const int SOL_SOCKET = 1;
        const int SO_ERROR = 4;
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            int error = 0;
            uint length = sizeof(int);
            return GetSocketOption(socketFd.Fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0
                ? error
                : Marshal.GetLastPInvokeError();
        }
        catch (ObjectDisposedException)
        {
            return EBADF;
        }
    }

    /// <summary>
    /// poll(2) without waiting: true when a connect under way on <paramref name="socket"/> has finished,
    /// either way (writable, or an error or hang-up to read with <see cref="PendingError"/>). A connect
    /// to a loopback or near peer often has by the time connect(2) returns.
    /// </summary>
    public static bool ConnectFinished(Socket socket)
    {
        const short POLLOUT = 0x4;
        const short POLLERR = 0x8;
        const short POLLHUP = 0x10;
        try
        {
            using var socketFd = new SocketDescriptor(socket);
            var entry = new PollEntry { Fd = socketFd.Fd, Events = POLLOUT };
            int result;
            do
            {
                result = PollCall(&entry, 1, 0);
            }
            while (result < 0 && Marshal.GetLastPInvokeError() == EINTR);
            return result > 0 && (entry.ReturnedEvents & (POLLOUT | POLLERR | POLLHUP)) != 0;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    private struct PollEntry
    {
        public int Fd;
        public short Events;
        public short ReturnedEvents;
    }

    [LibraryImport("libc", EntryPoint = "poll", SetLastError = true)]
    private static partial int PollCall(PollEntry* entries, nuint count, int timeout);

    [LibraryImport("libc", EntryPoint = "getsockopt", SetLastError = true)]
    private static partial int GetSocketOption(int fd, int level, int name, int* value, uint* length);

    [LibraryImport("libc", EntryPoint = "epoll_create1", SetLastError = true)]
    private static partial int EpollCreate1(int flags);

    [LibraryImport("libc", EntryPoint = "epoll_ctl", SetLastError = true)]
    private static partial int EpollCtl(int epoll, int operation, int fd, byte* ev);

    [LibraryImport("libc", EntryPoint = "epoll_wait", SetLastError = true)]
    private static partial int EpollWait(int epoll, byte* events, int maxEvents, int timeout);

    [LibraryImport("libc", EntryPoint = "recv", SetLastError = true)]
    private static partial nint ReceiveCall(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport("libc", EntryPoint = "send", SetLastError = true)]
    private static partial nint SendCall(int fd, byte* buffer, nuint length, int flags);
}
