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
public sealed class SocketConnection : IDuplexConnection, IReadinessTarget
{
    private readonly bool _readiness;
    private SpinLock _lock = new(enableThreadOwnerTracking: false);
    private ulong _registration;
    private bool _registered;
    private bool _added;
    private Waiter? _reader;
    private Waiter? _writer;
    // The last receive filled its buffer, so the socket may well hold more: a zero-byte read looks
    // (one peek) before it waits. A reader that takes a record at a time (SslStream asks for exactly
    // one TLS record) would otherwise go through the readiness set for every record.
    private bool _mayHoldMore;
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
            if (_mayHoldMore)
            {
                _mayHoldMore = false;
                var peeked = Peek(Socket);
                if (peeked != -EAGAIN)
                {
                    return peeked >= 0 ? default : ValueTask.FromException<int>(ToSocketException((int)-peeked));
                }
            }
            return Wait(EPOLLIN, cancellationToken);
        }
        var read = SocketReadiness.Receive(Socket, buffer.Span);
        if (read >= 0)
        {
            _mayHoldMore = read == buffer.Length;
            return new ValueTask<int>((int)read);
        }
        return read == -EAGAIN ? ReceiveWhenReadyAsync(buffer, cancellationToken)
            : ValueTask.FromException<int>(ToSocketException((int)-read));
    }

    private async ValueTask<int> ReceiveWhenReadyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Wait(EPOLLIN, cancellationToken).ConfigureAwait(false);
            var read = SocketReadiness.Receive(Socket, buffer.Span);
            if (read >= 0)
            {
                _mayHoldMore = read == buffer.Length;
                return (int)read;
            }
            if (read != -EAGAIN)
            {
                throw ToSocketException((int)-read);
            }
        }
    }

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
        var sent = SocketReadiness.Send(Socket, data.Span);
        return sent == data.Length ? ValueTask.CompletedTask
            : sent >= 0 ? SendWhenReadyAsync(data[(int)sent..], cancellationToken)
            : sent == -EAGAIN ? SendWhenReadyAsync(data, cancellationToken)
            : ValueTask.FromException(ToSocketException((int)-sent));
    }

    private async ValueTask SendWhenReadyAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        while (true)
        {
            await Wait(EPOLLOUT, cancellationToken).ConfigureAwait(false);
            var sent = SocketReadiness.Send(Socket, data.Span);
            if (sent == -EAGAIN)
            {
                continue;
            }
            if (sent < 0)
            {
                throw ToSocketException((int)-sent);
            }
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
        return sent == data.Length ? ValueTask.CompletedTask : SendWithRuntimeAsync(data[sent..], cancellationToken);
    }

    private async ValueTask SendWithRuntimeAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Socket.SendAsync on a stream socket completes only once every byte is queued.
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
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
        var error = SocketReadiness.Connect(Socket, endpoint.Serialize());
        if (error == 0)
        {
            return;
        }
        if (error != EINPROGRESS)
        {
            throw ToSocketException(error);
        }
        // Nothing else waits on this socket yet: a report now is about this connect (writable once
        // connected, an error or hang-up once it failed).
        try
        {
            await Wait(EPOLLOUT, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            // A relayed socket seldom waits to write: it need not keep the connect's waiter.
            _writer = null;
        }
        error = SocketReadiness.PendingError(Socket);
        if (error != 0)
        {
            throw ToSocketException(error);
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

    /// <summary>Waits (without a thread) until the socket is ready for <paramref name="events"/>: EPOLLIN or EPOLLOUT.</summary>
    private ValueTask<int> Wait(uint events, CancellationToken cancellationToken)
    {
        var waiter = events == EPOLLIN ? _reader ??= new Waiter(this) : _writer ??= new Waiter(this);
        return waiter.Begin(cancellationToken);
    }

    /// <summary>Arms the socket for every waiter that is waiting; 0 or the errno.</summary>
    private int Arm()
    {
        var taken = false;
        try
        {
            _lock.Enter(ref taken);
            if (Volatile.Read(ref _closed) != 0)
            {
                return EBADF;
            }
            if (!_registered)
            {
                _registration = SocketReadiness.Register(this);
                _registered = true;
            }
            return SocketReadiness.Arm(_registration, Socket, Waiting(), ref _added);
        }
        finally
        {
            if (taken)
            {
                _lock.Exit(useMemoryBarrier: false);
            }
        }
    }

    private uint Waiting() => (_reader?.IsWaiting == true ? EPOLLIN : 0) | (_writer?.IsWaiting == true ? EPOLLOUT : 0);

    void IReadinessTarget.OnReady(uint events)
    {
        var readable = (events & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) != 0;
        var writable = (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0;
        var taken = false;
        try
        {
            _lock.Enter(ref taken);
            // The report used the arming up: arm again for a waiter it did not answer.
            var rest = Waiting() & ~((readable ? EPOLLIN : 0) | (writable ? EPOLLOUT : 0));
            if (rest != 0 && _registered)
            {
                SocketReadiness.Arm(_registration, Socket, rest, ref _added);
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

        public ValueTask<int> Begin(CancellationToken cancellationToken)
        {
            _core.Reset();
            _outcome = null;
            Volatile.Write(ref _waiting, 1);
            if (cancellationToken.CanBeCanceled)
            {
                _cancellation = cancellationToken.UnsafeRegister(
                    static (state, token) => ((Waiter)state!).Finish(new OperationCanceledException(token)), this);
            }
            var error = owner.Arm();
            if (error != 0)
            {
                Finish(ToSocketException(error));
            }
            return new ValueTask<int>(this, _core.Version);
        }

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
