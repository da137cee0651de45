using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks.Sources;
using static Passage.Transport.LinuxSplice;
using static Passage.Transport.SocketReadiness;

namespace Passage.Transport;

/// <summary>An <see cref="IDuplexConnection"/> over a connected plain socket. Owns the socket.</summary>
/// <remarks>
/// <para>On Linux the socket is used in non-blocking mode with plain recv(2)/send(2), and waits for
/// readiness through <see cref="SocketReadiness"/> instead of the runtime's asynchronous socket calls:
/// those give a socket about 900 bytes of async state for the rest of its life on first use, which
/// every idle relayed connection would hold twice. A waiting read here costs one small waiter
/// (<see cref="Waiter"/>), created once and reused. Elsewhere the runtime's calls are used.</para>
/// <para>Wake-ups run their continuation on the readiness thread or on the thread pool, following the
/// runtime's switch for its own socket completions (<see cref="SocketReadiness.Inline"/>).</para>
/// <para>Dispose (or abort) through this object, not the socket: that takes the socket out of the
/// readiness set before it is closed and ends whatever waits on it.</para>
/// </remarks>
public sealed class SocketConnection : IDuplexConnection, IReadinessTarget, IWrittenCount, IEndOfStreamCheck
{
    private readonly bool _readiness;
    private SpinLock _lock = new(enableThreadOwnerTracking: false);
    private ulong _registration;
    private bool _registered;
    // One more than the epoll set to join when registered (0: whichever Register picks), so that the
    // two sockets of a relayed connection wait on one readiness thread (see KeepTogether).
    private ushort _set;
    // An epoll_ctl(2) for this socket is under way outside the lock (see Install).
    private bool _widening;
    // What the epoll set watches on this socket (0: not added yet).
    private uint _watched;
    private Waiter? _reader;
    private Waiter? _writer;
    // Reports of readiness (edge-triggered) for reading and for writing, counted under the lock. A call
    // that finds nothing notes the count it started at, and waits only while no report came since.
    private int _readReports;
    private int _writeReports;
    // The last read found the socket empty (EAGAIN, or fewer bytes than it asked for), starting at
    // _readReports == _drainedAt: a zero-byte read then waits without asking the kernel; so does one on a
    // socket this object connected, before any read. Otherwise (a read that filled its buffer, end of
    // stream, a socket accepted elsewhere, bytes taken by someone else such as a splice) a zero-byte
    // read looks first (one peek).
    private bool _drained;
    private int _drainedAt;
    // A report said the peer half-closed, hung up or failed, or sent urgent data: a short read no longer
    // means "nothing more", since the end of stream (or the error) waiting behind the bytes it took is
    // news that came with an earlier report, and a read (or a splice) stops short at the urgent byte's
    // mark with the bytes after it already queued.
    private bool _shortReadUnsure;
    // What send(2) has taken of this object's writes, the part of one that then failed included (see Written).
    private long _written;
    private int _writesCompleted;
    private int _nonBlocking;
    private int _closed;

    /// <summary>
    /// Wraps <paramref name="socket"/>, which must be connected (or be connected with
    /// <see cref="ConnectAsync"/>); disposing this disposes it.
    /// </summary>
    public SocketConnection(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Socket = socket;
        _readiness = SocketReadiness.IsAvailable;
        if (_readiness)
        {
            try
            {
                // Everything this class does with it is non-blocking; splicing needs it so too.
                SetNonBlocking(socket);
            }
            catch (ObjectDisposedException)
            {
                // Closed already: every call will say so.
            }
        }
    }

    /// <inheritdoc />
    public Socket Socket { get; }

    /// <summary>True when this object has put the descriptor in non-blocking mode (on Linux), so nobody needs to ask the kernel.</summary>
    internal bool IsNonBlocking => _readiness;

    Socket? IDuplexConnection.Socket => Socket;

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!_readiness)
        {
            return Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
        }
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }
        if (buffer.IsEmpty)
        {
            // Readiness only: nothing is consumed, and no buffer is held while waiting.
            var drained = _drained;
            // Once: whatever the caller does next (a read, or a splice this object does not see) changes
            // what is there.
            _drained = false;
            if (drained && ReadMark == _drainedAt && !Volatile.Read(ref _shortReadUnsure))
            {
                return Wait(EPOLLIN, _drainedAt, cancellationToken);
            }
            // Not known to be empty, or reported since: a report may be about bytes the last read took
            // already, and a caller woken for nothing would wait again holding its buffer.
            var mark = ReadMark;
            var peeked = Peek(Socket);
            if (peeked != -EAGAIN)
            {
                return peeked >= 0 ? default : ValueTask.FromException<int>(ToSocketException((int)-peeked));
            }
            return Wait(EPOLLIN, mark, cancellationToken);
        }
        var before = ReadMark;
        var read = SocketReadiness.Receive(Socket, buffer.Span);
        if (read >= 0)
        {
            Took(read, buffer.Length, before);
            return new ValueTask<int>((int)read);
        }
        return read == -EAGAIN ? ReceiveWhenReadyAsync(buffer, before, cancellationToken)
            : ValueTask.FromException<int>(ToSocketException((int)-read));
    }

    /// <summary>
    /// The first byte queued on the socket, without taking it, once there is one: -1 at end of stream. For a
    /// listener that must tell what a client speaks before handing the socket to the code that reads it.
    /// </summary>
    internal async ValueTask<int> PeekByteAsync(CancellationToken cancellationToken)
    {
        var one = new byte[1];
        if (!_readiness)
        {
            await ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            // Readable now (bytes, or the end), so this does not block.
            return Socket.Receive(one, SocketFlags.Peek) == 0 ? -1 : one[0];
        }
        while (true)
        {
            var mark = ReadMark;
            var peeked = SocketReadiness.Peek(Socket, one);
            if (peeked >= 0)
            {
                return peeked == 0 ? -1 : one[0];
            }
            if (peeked != -EAGAIN)
            {
                throw ToSocketException((int)-peeked);
            }
            // Known empty: the zero-byte read waits without asking the kernel again.
            NoteDrained(mark);
            await ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>The count of read reports so far: taken before a call that reads, for <see cref="NoteDrained"/>.</summary>
    internal int ReadMark => Volatile.Read(ref _readReports);

    /// <summary>
    /// Tells this object that a read of its socket done elsewhere (a splice), begun at
    /// <paramref name="mark"/> (<see cref="ReadMark"/>), found it empty (EAGAIN): the next zero-byte
    /// read can wait without asking the kernel first.
    /// </summary>
    internal void NoteDrained(int mark)
    {
        _drained = true;
        _drainedAt = mark;
    }

    /// <summary>The count of write reports so far: taken before a send done elsewhere (a splice), for <see cref="WaitWritableAsync"/>.</summary>
    internal int WriteMark => Volatile.Read(ref _writeReports);

    /// <summary>
    /// Waits without a thread until the socket is reported writable after <paramref name="mark"/>
    /// (<see cref="WriteMark"/>, taken before a send done elsewhere, such as a splice, that found the send
    /// buffer full; that refusal is what makes the kernel report the next room). Completes at once if a
    /// report came since. Only where <see cref="IsNonBlocking"/>.
    /// </summary>
    internal ValueTask<int> WaitWritableAsync(int mark, CancellationToken cancellationToken) => Wait(EPOLLOUT, mark, cancellationToken);

    /// <summary>
    /// recv(2) without waiting, as <see cref="SocketReadiness.Receive"/>, keeping note of whether it
    /// emptied the socket (so that a zero-byte read after it waits without asking the kernel). Only
    /// where <see cref="IsNonBlocking"/> (Linux, with the relay's own readiness).
    /// </summary>
    internal nint ReceiveNow(Span<byte> buffer)
    {
        var mark = ReadMark;
        var read = SocketReadiness.Receive(Socket, buffer);
        if (read >= 0)
        {
            Took(read, buffer.Length, mark);
        }
        else if (read == -EAGAIN)
        {
            NoteDrained(mark);
        }
        return read;
    }

    // A receive took `read` bytes of the `asked`: fewer means it emptied the socket (a stream socket's
    // recv(2) stops short only when nothing more is queued); none means end of stream, which stays.
    private void Took(nint read, int asked, int mark)
    {
        _drained = read > 0 && read < asked;
        _drainedAt = mark;
    }

    private async ValueTask<int> ReceiveWhenReadyAsync(Memory<byte> buffer, int mark, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Wait(EPOLLIN, mark, cancellationToken).ConfigureAwait(false);
            mark = ReadMark;
            var read = SocketReadiness.Receive(Socket, buffer.Span);
            if (read >= 0)
            {
                Took(read, buffer.Length, mark);
                return (int)read;
            }
            if (read != -EAGAIN)
            {
                throw ToSocketException((int)-read);
            }
        }
    }

    /// <summary>
    /// Bytes the kernel has taken from this object's writes so far, those of a write that then failed
    /// included. Read before a write and again once it has failed, it tells how much of it went out all
    /// the same: a peer that read those bytes before it reset had them. Counted by the one writer at a
    /// time that a connection allows.
    /// </summary>
    internal long Written => Volatile.Read(ref _written);

    long IWrittenCount.Written => Written;

    /// <summary>
    /// Counts <paramref name="count"/> bytes the kernel took from a pipe spliced into this socket (the pump's splice path,
    /// which writes past this object), so that <see cref="Written"/> counts every byte written to it.
    /// </summary>
    internal void CountSpliced(long count) => Volatile.Write(ref _written, _written + count);

    /// <summary>
    /// Whether a report said the peer half-closed, hung up, failed or sent urgent data: then a short read, or a splice
    /// that stops, proves nothing about what is still queued.
    /// </summary>
    internal bool ShortReadUnsure => Volatile.Read(ref _shortReadUnsure);

    /// <inheritdoc />
    /// <remarks>
    /// What the send buffer takes at once is sent right here; only a full send buffer waits. (With
    /// the runtime's calls, the socket is put in non-blocking mode for this: its first async send
    /// would keep about 360 bytes of event args for the rest of the socket's life.)
    /// </remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (!_readiness)
        {
            return WriteWithRuntimeAsync(data, cancellationToken);
        }
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }
        if (data.IsEmpty)
        {
            return ValueTask.CompletedTask;
        }
        var mark = Volatile.Read(ref _writeReports);
        var sent = SocketReadiness.Send(Socket, data.Span);
        if (sent > 0)
        {
            Volatile.Write(ref _written, _written + sent);
        }
        return sent == data.Length ? ValueTask.CompletedTask
            : sent >= 0 ? SendWhenReadyAsync(data[(int)sent..], mark, cancellationToken)
            : sent == -EAGAIN ? SendWhenReadyAsync(data, mark, cancellationToken)
            : ValueTask.FromException(ToSocketException((int)-sent));
    }

    // A send that took less than all (or EAGAIN) found the send buffer full, which makes the kernel
    // report the next room that frees up.
    private async ValueTask SendWhenReadyAsync(ReadOnlyMemory<byte> data, int mark, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Wait(EPOLLOUT, mark, cancellationToken).ConfigureAwait(false);
            mark = Volatile.Read(ref _writeReports);
            var sent = SocketReadiness.Send(Socket, data.Span);
            if (sent == -EAGAIN)
            {
                continue;
            }
            if (sent < 0)
            {
                throw ToSocketException((int)-sent);
            }
            Volatile.Write(ref _written, _written + sent);
            data = data[(int)sent..];
            if (data.IsEmpty)
            {
                return;
            }
        }
    }

    private ValueTask WriteWithRuntimeAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (data.IsEmpty || cancellationToken.IsCancellationRequested)
        {
            return SendWithRuntimeAsync(data, cancellationToken);
        }
        if (Interlocked.Exchange(ref _nonBlocking, 1) == 0)
        {
            Socket.Blocking = false;
        }
        var sent = Socket.Send(data.Span, SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            return SendWithRuntimeAsync(data, cancellationToken);
        }
        if (error != SocketError.Success)
        {
            return ValueTask.FromException(new SocketException((int)error));
        }
        Volatile.Write(ref _written, _written + sent);
        return sent == data.Length ? ValueTask.CompletedTask : SendWithRuntimeAsync(data[sent..], cancellationToken);
    }

    private async ValueTask SendWithRuntimeAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Socket.SendAsync on a stream socket completes only once every byte is queued.
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            Volatile.Write(ref _written, _written + sent);
            data = data[sent..];
        }
    }

    /// <inheritdoc />
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _writesCompleted, 1) == 0)
        {
            Socket.Shutdown(SocketShutdown.Send);
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// Its TCP state (<see cref="TcpState.EndWasFailure"/>), unless this object has half-closed the socket. The state is
    /// read first and the flag after it (with a fence): a half-close by the other direction that closed the connection
    /// (its FIN, then the peer's) set the flag before its shutdown, so it is seen.
    /// </remarks>
    public bool EndOfStreamWasFailure() => TcpState.EndWasFailure(Socket) && Interlocked.CompareExchange(ref _writesCompleted, 0, 0) == 0;

    /// <inheritdoc />
    public void Abort()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Close(reset: true);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            Close(reset: false);
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Connects the socket (created, not yet connected) to <paramref name="endpoint"/> without a
    /// thread waiting and without giving it the runtime's async state. Failures throw as the
    /// runtime's <c>ConnectAsync</c> does (a <see cref="SocketException"/>, or cancellation); the
    /// caller still owns (and disposes) this object either way.
    /// </summary>
    internal async ValueTask ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken)
    {
        if (!_readiness)
        {
            await Socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return;
        }
        cancellationToken.ThrowIfCancellationRequested();
        // connect(2) itself: the runtime's call on a non-blocking socket needs Socket.Blocking, which
        // gives the socket the async state avoided here. The runtime then does not know the socket is
        // connected (its RemoteEndPoint is null); nothing that takes a dialed socket asks it.
        var mark = Volatile.Read(ref _writeReports);
        var readMark = ReadMark;
        var error = SocketReadiness.Connect(Socket, endpoint.Serialize());
        if (error == 0)
        {
            return;
        }
        if (error != EINPROGRESS)
        {
            throw ToSocketException(error);
        }
        // A connect to a loopback or near peer has mostly finished by now. Taking that here, on this
        // thread, spares a wake-up of a readiness thread (and the hand-over to it) per connection, and
        // leaves the socket out of the epoll set until something waits on it (and unwatched for writing
        // until something waits to write).
        if (!SocketReadiness.ConnectFinished(Socket))
        {
            // Nothing else waits on this socket yet: a report now is about this connect (writable once
            // connected, an error or hang-up once it failed). Adding the socket to the epoll set reports
            // at once if the connect has finished in the meantime.
            try
            {
                await Wait(EPOLLOUT, mark, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                // A relayed socket seldom waits to write: it need not keep the connect's waiter.
                _writer = null;
            }
        }
        error = SocketReadiness.PendingError(Socket);
        if (error != 0)
        {
            throw ToSocketException(error);
        }
        // Either the wait put the socket in the epoll set for reading as well, before anything could be
        // read from it, or the first wait will; adding a socket reports what is queued already. So it is
        // empty until a read report comes, and the first zero-byte read waits without a peek.
        NoteDrained(readMark);
    }

    /// <summary>
    /// Makes the two ends of a relayed connection wait on the same readiness thread: the one that
    /// either already waits on, else one chosen now. Its wake-ups then do not hop between threads
    /// (which, on a busy machine, each may have to wait to be scheduled), whichever thread set the
    /// connection up: a dialed socket that connected at once is registered from the thread that dialed.
    /// </summary>
    internal static void KeepTogether(SocketConnection a, SocketConnection b)
    {
        if (!a._readiness || !b._readiness)
        {
            return;
        }
        var set = a.RegisteredSet() ?? b.RegisteredSet() ?? SocketReadiness.ChooseSet();
        a._set = b._set = (ushort)(set + 1);
    }

    private int? RegisteredSet()
    {
        var taken = false;
        try
        {
            _lock.Enter(ref taken);
            return _registered ? SocketReadiness.SetOf(_registration) : null;
        }
        finally
        {
            if (taken)
            {
                _lock.Exit(useMemoryBarrier: false);
            }
        }
    }

    private void Close(bool reset)
    {
        Unregister();
        if (reset)
        {
            SocketReset.Close(Socket);
        }
        else
        {
            Socket.Dispose();
        }
        if (Waiting() != 0)
        {
            // Only for a wait that is there: most closes find none, and an exception is not free.
            var aborted = new SocketException((int)SocketError.OperationAborted);
            _reader?.Finish(aborted);
            _writer?.Finish(aborted);
        }
    }

    private void Unregister()
    {
        var taken = false;
        try
        {
            _lock.Enter(ref taken);
            if (_registered)
            {
                _registered = false;
                SocketReadiness.Unregister(_registration);
            }
        }
        finally
        {
            if (taken)
            {
                _lock.Exit(useMemoryBarrier: false);
            }
        }
    }

    /// <summary>
    /// Waits (without a thread) until the socket is reported ready for <paramref name="events"/> (EPOLLIN
    /// or EPOLLOUT) after <paramref name="mark"/>, the count of such reports when the caller last found it
    /// not ready; completes at once if one came since.
    /// </summary>
    private ValueTask<int> Wait(uint events, int mark, CancellationToken cancellationToken)
    {
        var waiter = events == EPOLLIN ? _reader ??= new Waiter(this) : _writer ??= new Waiter(this);
        return waiter.Begin(events, mark, cancellationToken);
    }

    /// <summary>
    /// 1 if a report for <paramref name="events"/> came after <paramref name="mark"/>; else marks
    /// <paramref name="waiter"/> waiting and returns 0, once the epoll set watches for them or another
    /// thread's call that adds them is under way (should that call fail, it ends this wait with its
    /// error); or the negated errno of this call's own failure (0 if a close ended the wait first).
    /// </summary>
    /// <remarks>
    /// The epoll_ctl(2) that adds the socket or widens what is watched runs outside the lock: adding a
    /// socket that has something queued reports at once, and the readiness thread that hears of it
    /// takes the lock to count the report. Holding the lock through the call made that thread spin,
    /// then yield its core (a millisecond once, on a busy machine) for a report about a connection that
    /// was just being set up. The waiter is marked before the call, so the report finds it.
    /// </remarks>
    private int Install(Waiter waiter, uint events, int mark)
    {
        uint before;
        uint watch;
        var spinner = new SpinWait();
        while (true)
        {
            var taken = false;
            try
            {
                _lock.Enter(ref taken);
                if (Volatile.Read(ref _closed) != 0)
                {
                    return -EBADF;
                }
                if ((events == EPOLLIN ? _readReports : _writeReports) != mark)
                {
                    return 1;
                }
                if (!_registered)
                {
                    _registration = _set != 0 ? SocketReadiness.Register(this, _set - 1) : SocketReadiness.Register(this);
                    _registered = true;
                }
                if ((_watched & events) == events)
                {
                    // Watched: by an epoll_ctl done, or under way on another thread, whose report (if
                    // the socket is ready) comes after it and finds this waiter.
                    waiter.MarkWaiting();
                    return 0;
                }
                if (!_widening)
                {
                    // Reading is always watched; writing from the first wait to send on (a dialed
                    // socket's connect is one), which most relayed sockets never need.
                    before = _watched;
                    watch = before | events | EPOLLIN;
                    _watched = watch;
                    _widening = true;
                    waiter.MarkWaiting();
                    break;
                }
            }
            finally
            {
                if (taken)
                {
                    _lock.Exit(useMemoryBarrier: false);
                }
            }
            // The other kind of wait is adding the socket right now (its first read and first wait to
            // send began together): rare, and over within one call. Never a sleep: this may be a
            // readiness thread, which would stall every socket of its set.
            spinner.SpinOnce(sleep1Threshold: -1);
        }

        var error = SocketReadiness.Watch(_registration, Socket, watch, added: before != 0);
        Waiter? dependent = null;
        var restored = false;
        try
        {
            _lock.Enter(ref restored);
            _widening = false;
            if (error != 0)
            {
                _watched = before;
                // The other kind's waiter counted on this call if it was installed while the call was
                // under way: waiting for what was not watched before. Decided under the lock: a waiter
                // installed after the restore makes its own call.
                var other = events == EPOLLIN ? _writer : _reader;
                if ((before & (events == EPOLLIN ? EPOLLOUT : EPOLLIN)) == 0 && other?.IsWaiting == true)
                {
                    dependent = other;
                }
            }
        }
        finally
        {
            if (restored)
            {
                _lock.Exit(useMemoryBarrier: false);
            }
        }
        if (error == 0)
        {
            return 0;
        }
        // Nothing watches for what this waiter (or the dependent one) waits for: each ends with the
        // error, unless something (a close) ended it already.
        dependent?.Finish(ToSocketException(error));
        return waiter.Unmark() ? -error : 0;
    }

    private uint Waiting() => (_reader?.IsWaiting == true ? EPOLLIN : 0) | (_writer?.IsWaiting == true ? EPOLLOUT : 0);

    void IReadinessTarget.OnReady(uint events)
    {
        var readable = (events & (EPOLLIN | EPOLLPRI | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0;
        var writable = (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
        var taken = false;
        try
        {
            _lock.Enter(ref taken);
            // Counted under the lock that Install checks under: a waiter is either installed before
            // this report (and woken below) or sees the new count and does not wait.
            if (readable)
            {
                _readReports++;
            }
            if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR | EPOLLPRI)) != 0)
            {
                _shortReadUnsure = true;
            }
            if (writable)
            {
                _writeReports++;
            }
        }
        finally
        {
            if (taken)
            {
                _lock.Exit(useMemoryBarrier: false);
            }
        }
        if (readable)
        {
            _reader?.Finish(null, SocketReadiness.Inline);
        }
        if (writable)
        {
            _writer?.Finish(null, SocketReadiness.Inline);
        }
    }

    /// <summary>
    /// One kind of wait (for reading or for writing) on this socket, reused wait after wait: the
    /// value task a waiting caller holds, completed when the socket is ready (on the readiness thread
    /// or the thread pool, see <see cref="Finish"/>), the caller's token fires, or the socket is closed.
    /// </summary>
    private sealed class Waiter(SocketConnection owner) : IValueTaskSource<int>, IThreadPoolWorkItem
    {
        private ManualResetValueTaskSourceCore<int> _core;
        private CancellationTokenRegistration _cancellation;
        private Exception? _outcome;
        private int _waiting;

        public bool IsWaiting => Volatile.Read(ref _waiting) != 0;

        public ValueTask<int> Begin(uint events, int mark, CancellationToken cancellationToken)
        {
            _core.Reset();
            _outcome = null;
            var installed = owner.Install(this, events, mark);
            if (installed != 0)
            {
                return installed > 0 ? new ValueTask<int>(0) : ValueTask.FromException<int>(ToSocketException(-installed));
            }
            if (cancellationToken.CanBeCanceled)
            {
                var registration = cancellationToken.UnsafeRegister(
                    static (state, token) => ((Waiter)state!).Finish(new OperationCanceledException(token)), this);
                _cancellation = registration;
                if (!IsWaiting)
                {
                    // Woken before the registration was in place, whose end then did not see it.
                    registration.Dispose();
                }
            }
            return new ValueTask<int>(this, _core.Version);
        }

        /// <summary>Under the owner's lock, once the socket is watched or about to be.</summary>
        public void MarkWaiting() => Volatile.Write(ref _waiting, 1);

        /// <summary>Takes back a wait that nothing will end (watching failed): false if something ended it already.</summary>
        public bool Unmark() => Interlocked.CompareExchange(ref _waiting, 0, 1) == 1;

        /// <summary>
        /// Ends the wait (once; later calls do nothing): ready when <paramref name="outcome"/> is null.
        /// The waiter's continuation runs right here when <paramref name="inline"/> (on a readiness
        /// thread), else on the thread pool: never inside a cancellation callback or an abort.
        /// </summary>
        public void Finish(Exception? outcome, bool inline = false)
        {
            if (Interlocked.CompareExchange(ref _waiting, 0, 1) != 1)
            {
                return;
            }
            _outcome = outcome;
            if (inline)
            {
                ((IThreadPoolWorkItem)this).Execute();
            }
            else
            {
                ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);
            }
        }

        void IThreadPoolWorkItem.Execute()
        {
            _cancellation.Dispose();
            _cancellation = default;
            var outcome = _outcome;
            _outcome = null;
            if (outcome is null)
            {
                _core.SetResult(0);
            }
            else
            {
                _core.SetException(outcome);
            }
        }

        public int GetResult(short token)
        {
            try
            {
                return _core.GetResult(token);
            }
            finally
            {
                // Lets go of the continuation now, not at the next wait: an idle socket would otherwise
                // keep the last waiter's frame (an async method's box) alive.
                _core.Reset();
            }
        }

        public ValueTaskSourceStatus GetStatus(short token) => _core.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
            _core.OnCompleted(continuation, state, token, flags);
    }
}
