using System.Buffers;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Passage.Transport;

/// <summary>
/// The one place that moves bytes between two connections.
/// </summary>
/// <remarks>
/// <para>Both directions run at once. End of stream on one side is passed on as a half-close to the
/// other while the opposite direction keeps flowing; the run completes when both directions have
/// ended. A failed read or write on either side, the idle timeout, or the caller's token ends the
/// run at once and aborts both sides (so nothing is left waiting).</para>
/// <para>An idle direction holds no buffer: it waits with a zero-byte read and rents a pooled buffer
/// only when data is there, returning it as soon as a read comes back short.</para>
/// <para>Byte counts are of bytes delivered (written successfully), so they stay right when a side
/// fails mid-transfer.</para>
/// <para>Each direction picks its path itself: where both ends are plain sockets on Linux it splices
/// (socket → kernel pipe → socket, no copy into user space; see <c>BytePump.Splice.cs</c>), and
/// everywhere else, or when <see cref="PumpOptions.ZeroCopy"/> is off, it copies through a pooled
/// buffer. The contract above holds on both paths.</para>
/// <code>
///   client ──read──► [buffer] ──write──► upstream      (EOF ⇒ upstream.CompleteWrites)
///   client ◄─write── [buffer] ◄──read─── upstream      (EOF ⇒ client.CompleteWrites)
/// </code>
/// </remarks>
public static partial class BytePump
{
    /// <summary>
    /// Relays between <paramref name="client"/> and <paramref name="upstream"/> until both directions
    /// end, a side fails, the idle timeout passes or <paramref name="cancellationToken"/> is cancelled.
    /// Never throws for network failures: they come back in the <see cref="PumpResult"/>. The caller
    /// still owns (and disposes) both connections.
    /// </summary>
    /// <param name="client">The accepted side.</param>
    /// <param name="upstream">The dialed side.</param>
    /// <param name="options">Tunables; <see cref="PumpOptions.Default"/> when null.</param>
    /// <param name="clientPreamble">Bytes already read from the client (e.g. a ClientHello that was
    /// inspected for routing), written to the upstream before anything else and counted.</param>
    /// <param name="cancellationToken">Ends the run (result <see cref="PumpEnd.Canceled"/>, unless the run had already
    /// stopped for another reason: a caller whose token is cancelled by the pump's own teardown still learns why).</param>
    public static Task<PumpResult> RunAsync(
        IDuplexConnection client,
        IDuplexConnection upstream,
        PumpOptions? options = null,
        ReadOnlyMemory<byte> clientPreamble = default,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(upstream);
        // Not an async method: a relayed connection lives as long as its run, so every frame kept
        // waiting above the two directions is memory an idle connection holds.
        var done = new TaskCompletionSource<PumpResult>();
        new PumpRun(client, upstream, options ?? PumpOptions.Default, clientPreamble, done, cancellationToken).Start();
        return done.Task;
    }

    /// <summary>
    /// As <see cref="RunAsync"/>, but the end is told to <paramref name="completion"/> (once, on the
    /// thread that ended the run) instead of through a task: for a caller that keeps an object per
    /// relayed connection anyway, the task, its source and a continuation on it are memory that an
    /// idle connection would hold for nothing. With <paramref name="pooledPreamble"/>, the array behind
    /// <paramref name="clientPreamble"/> was rented from <see cref="ArrayPool{T}.Shared"/> and the run gives it
    /// back once the preamble is written (or its write failed): the caller lets go of it here.
    /// </summary>
    internal static void Run(
        IDuplexConnection client,
        IDuplexConnection upstream,
        PumpOptions options,
        ReadOnlyMemory<byte> clientPreamble,
        IPumpCompletion completion,
        CancellationToken cancellationToken,
        bool pooledPreamble = false)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(upstream);
        ArgumentNullException.ThrowIfNull(completion);
        new PumpRun(client, upstream, options, clientPreamble, completion, cancellationToken) { PooledPreamble = pooledPreamble }.Start();
    }

    /// <summary>
    /// Gives the array behind <paramref name="bytes"/> back to <see cref="ArrayPool{T}.Shared"/>: for a pooled
    /// preamble that never reached a run (the connection was refused), as the run does once it has written one.
    /// </summary>
    internal static void ReturnPooled(ReadOnlyMemory<byte> bytes)
    {
        if (MemoryMarshal.TryGetArray(bytes, out var rented))
        {
            ArrayPool<byte>.Shared.Return(rented.Array!);
        }
    }

    /// <summary>
    /// One relayed connection's run: what the two directions share (counts, how each ended, the idle
    /// timer, stopping). Held while the connection is idle: itself, its two <see cref="Direction"/>s
    /// (each parked on a zero-byte read of its source, with no async frame waiting) and the task the
    /// caller awaits.
    /// </summary>
    private sealed partial class PumpRun : IDisposable
    {
        private readonly IDuplexConnection _client;
        private readonly IDuplexConnection _upstream;
        private readonly PumpOptions _options;
        private readonly CancellationTokenRegistration _stopOnCancel;
        private readonly ITimer? _idleTimer;
        // Told of the end: a TaskCompletionSource<PumpResult> or an IPumpCompletion.
        private readonly object _completion;
        private readonly Direction _toUpstreamDirection;
        private readonly Direction _toClientDirection;
        // Dropped once written: an idle connection keeps no copy of its first bytes.
        private ReadOnlyMemory<byte> _clientPreamble;
        private int _toUpstreamPath;
        private int _toClientPath;
        private long _lastActivity;
        // What each end had taken of writes before the run (see WrittenAhead); what of writes still waiting the two had
        // taken, and what their send queues held, when the idle timer last looked (see CheckIdle). The queues are first
        // read by the first check (reading them here would cost two ioctls per connection set up); a drop before then
        // goes unseen.
        private readonly long _clientWrittenBefore;
        private readonly long _upstreamWrittenBefore;
        private long _aheadAtCheck;
        private long _queuedAtCheck;
        private long _toUpstream;
        private long _toClient;
        // Why the run was stopped (a StopReason): set once, by whichever stop came first.
        private int _stopped;
        private DirectionResult _toUpstreamEnd;
        private DirectionResult _toClientEnd;
        private Exception? _fault;
        private int _firstEnded;
        private int _ended;

        public PumpRun(IDuplexConnection client, IDuplexConnection upstream, PumpOptions options, ReadOnlyMemory<byte> clientPreamble, object completion, CancellationToken callerToken)
        {
            _completion = completion;
            _client = client;
            _upstream = upstream;
            _options = options;
            _clientPreamble = clientPreamble;
            _lastActivity = options.TimeProvider.GetTimestamp();
            _clientWrittenBefore = Written(client);
            _upstreamWrittenBefore = Written(upstream);
            if (client is SocketConnection clientSocket && upstream is SocketConnection upstreamSocket)
            {
                SocketConnection.KeepTogether(clientSocket, upstreamSocket);
            }
            var zeroCopy = options.ZeroCopy && LinuxSplice.IsAvailable && client.Socket is not null && upstream.Socket is not null;
            _toUpstreamDirection = new Direction(this, client, upstream, PumpSide.Client, PumpSide.Upstream, zeroCopy);
            _toClientDirection = new Direction(this, upstream, client, PumpSide.Upstream, PumpSide.Client, zeroCopy);
            // No operation is given a token: stopping tears both transports down, which ends whatever
            // is pending on them. One registration on the caller's token, none per read.
            _stopOnCancel = callerToken.UnsafeRegister(static state => ((PumpRun)state!).StopOnCancel(), this);
            if (options.IdleTimeout != Timeout.InfiniteTimeSpan)
            {
                _idleTimer = options.TimeProvider.CreateTimer(static state => ((PumpRun)state!).CheckIdle(), this, options.IdleTimeout, Timeout.InfiniteTimeSpan);
            }
        }

        public PumpOptions Options => _options;

        /// <summary>Whether the preamble's array goes back to <see cref="ArrayPool{T}.Shared"/> once written.</summary>
        public bool PooledPreamble { get; init; }

        /// <summary>Starts both directions; the completion is told when both have ended.</summary>
        public void Start()
        {
            // No hop to the thread pool to start: the first direction runs here until it has to wait or
            // has had its fair share, then the second starts.
            _toUpstreamDirection.Start();
            _toClientDirection.Start();
        }

        /// <summary>
        /// Called once by each direction as it ends. The first to end other than by end of stream
        /// stops the run; the second to end completes it.
        /// </summary>
        public void DirectionEnded(PumpSide toSide, DirectionResult result, PumpPath path, Exception? fault)
        {
            if (toSide == PumpSide.Upstream)
            {
                _toUpstreamEnd = result;
                Volatile.Write(ref _toUpstreamPath, (int)path);
            }
            else
            {
                _toClientEnd = result;
                Volatile.Write(ref _toClientPath, (int)path);
            }
            if (fault is not null)
            {
                Interlocked.CompareExchange(ref _fault, fault, null);
            }
            Interlocked.CompareExchange(ref _firstEnded, (int)toSide, 0);
            if (result.Kind != DirectionEnd.EndOfStream || fault is not null)
            {
                Stop(StopReason.Ended);
            }
            if (Interlocked.Increment(ref _ended) < 2)
            {
                return;
            }
            // From here the connections are the caller's again: an idle check or a cancellation still under way finds the
            // run stopped and leaves them alone (the timer's disposal below does not wait for a check that has begun).
            Interlocked.CompareExchange(ref _stopped, (int)StopReason.Finished, 0);

            var upstreamFirst = Volatile.Read(ref _firstEnded) == (int)PumpSide.Upstream;
            var result2 = Result(upstreamFirst ? _toUpstreamEnd : _toClientEnd, upstreamFirst ? _toClientEnd : _toUpstreamEnd) with
            {
                ClientToUpstreamPath = (PumpPath)Volatile.Read(ref _toUpstreamPath),
                UpstreamToClientPath = (PumpPath)Volatile.Read(ref _toClientPath),
            };
            var unexpected = Volatile.Read(ref _fault);
            Dispose();
            if (_completion is IPumpCompletion completion)
            {
                completion.PumpEnded(result2, unexpected);
            }
            else if (unexpected is not null)
            {
                ((TaskCompletionSource<PumpResult>)_completion).SetException(unexpected);
            }
            else
            {
                ((TaskCompletionSource<PumpResult>)_completion).SetResult(result2);
            }
        }

        private PumpResult Result(DirectionResult firstResult, DirectionResult secondResult)
        {
            var toUpstreamBytes = Interlocked.Read(ref _toUpstream);
            var toClientBytes = Interlocked.Read(ref _toClient);
            // A failure is one seen before any stop (see Ended), so it is what ended the run, whatever stopped it
            // after: an idle timer or a token that fired while the run was already winding down does not hide it.
            var failure = firstResult.Kind == DirectionEnd.Failed ? firstResult
                : secondResult.Kind == DirectionEnd.Failed ? secondResult
                : default;
            if (failure.Kind == DirectionEnd.Failed)
            {
                return new PumpResult(PumpEnd.Failed, failure.Side, toUpstreamBytes, toClientBytes, SocketErrorOf(failure.Error), failure.Error);
            }
            var end = (StopReason)Volatile.Read(ref _stopped) switch
            {
                StopReason.IdleTimeout => PumpEnd.IdleTimeout,
                StopReason.Canceled => PumpEnd.Canceled,
                _ => PumpEnd.Completed,
            };
            return new PumpResult(end, PumpSide.None, toUpstreamBytes, toClientBytes);
        }

        /// <summary>
        /// Writes the client's preamble upstream, the ordinary way on either path (splicing takes over
        /// after it), and lets go of it. Null when written or when there is none.
        /// </summary>
        public ValueTask<DirectionResult?> WritePreambleAsync(IDuplexConnection to, PumpSide toSide)
        {
            if (toSide != PumpSide.Upstream || _clientPreamble.IsEmpty)
            {
                return default;
            }
            var preamble = _clientPreamble;
            _clientPreamble = default;
            return WritePreambleAsync(to, toSide, preamble);
        }

        // Not a local function: one capturing the parameters would cost a closure object on every call.
        private async ValueTask<DirectionResult?> WritePreambleAsync(IDuplexConnection to, PumpSide toSide, ReadOnlyMemory<byte> preamble)
        {
            bool waited;
            var written = Written(to);
            try
            {
                var write = to.WriteAsync(preamble, default);
                waited = !write.IsCompleted;
                await write.ConfigureAwait(false);
            }
            catch (Exception e)
            {
                return WriteFailed(to, toSide, written, e);
            }
            finally
            {
                // The write has ended either way: nothing reads the bytes any more.
                if (PooledPreamble)
                {
                    ReturnPooled(preamble);
                }
            }
            Delivered(toSide, preamble.Length, waited);
            return null;
        }

        /// <summary>How a direction that failed with <paramref name="error"/> ended: stopped, when the run was stopping anyway (the failure is the teardown's).</summary>
        public DirectionResult Ended(PumpSide side, Exception error) =>
            Volatile.Read(ref _stopped) != 0
                ? new DirectionResult(DirectionEnd.Stopped, PumpSide.None, null)
                : new DirectionResult(DirectionEnd.Failed, side, error);

        /// <summary>What <paramref name="to"/> has taken of writes so far (<see cref="IWrittenCount"/>); 0 for an end that cannot tell.</summary>
        public static long Written(IDuplexConnection to) => to is IWrittenCount counted ? counted.Written : 0;

        /// <summary>
        /// How a direction whose write to <paramref name="to"/> failed with <paramref name="error"/> ended (<see cref="Ended"/>),
        /// once the part of that write which went out all the same is counted: <see cref="Written"/> now, less
        /// <paramref name="writtenBefore"/>, what it was before the write. A peer may have read those bytes before it reset.
        /// </summary>
        public DirectionResult WriteFailed(IDuplexConnection to, PumpSide toSide, long writtenBefore, Exception error)
        {
            if (Written(to) - writtenBefore is > 0 and var taken)
            {
                Delivered(toSide, (int)taken, waited: false);
            }
            return Ended(toSide, error);
        }

        /// <summary>
        /// Counts <paramref name="count"/> bytes written to <paramref name="toSide"/>. A write that had to
        /// wait (a slow reader taking its bytes) is activity in itself and restarts the idle timer; one
        /// that completed at once needs no second stamp: the read that brought the bytes made one just
        /// before, and stamping again after the bytes are already visible to the peer would let a
        /// stamp land after the moment the peer saw them.
        /// </summary>
        public void Delivered(PumpSide toSide, int count, bool waited)
        {
            if (toSide == PumpSide.Upstream)
            {
                Interlocked.Add(ref _toUpstream, count);
            }
            else
            {
                Interlocked.Add(ref _toClient, count);
            }
            _options.Tally?.Add(toSide, count);
            if (waited)
            {
                Touch();
            }
        }

        public void Touch() => Volatile.Write(ref _lastActivity, _options.TimeProvider.GetTimestamp());

        /// <summary>What <paramref name="end"/>'s socket holds unacknowledged (0 for an end without one, or that cannot tell).</summary>
        private static long Queued(IDuplexConnection end) => end.Socket is { } socket ? Math.Max(0, SocketReadiness.Unacknowledged(socket)) : 0;

        /// <summary>
        /// What the ends have taken of writes that have not completed yet: for each end, all it has taken during the run
        /// (<see cref="IWrittenCount"/>, spliced bytes included; nothing for an end that cannot tell) less what the run's
        /// completed writes and splices delivered to it.
        /// </summary>
        private long WrittenAhead() =>
            Math.Max(0, Written(_client) - _clientWrittenBefore - Interlocked.Read(ref _toClient))
            + Math.Max(0, Written(_upstream) - _upstreamWrittenBefore - Interlocked.Read(ref _toUpstream));

        private void CheckIdle()
        {
            // A write that waits on a reader taking its bytes slowly is stamped only when it completes: on the copy path one
            // buffer (64 KiB) to a reader taking 100 bytes a second takes longer than a 5-minute idle timeout, and such a
            // connection was cut though its bytes moved. What the ends have taken of writes still waiting, when it has
            // changed since the last look, is activity too; and so are bytes the peers took from the send queues (the
            // kernel moves them with no write of the pump's). A write that completed was stamped by the read before it, or
            // by its own end when it waited; so was each splice.
            var ahead = WrittenAhead();
            var queued = Queued(_client) + Queued(_upstream);
            if ((ahead > 0 && ahead != _aheadAtCheck) || queued < _queuedAtCheck)
            {
                Touch();
            }
            _aheadAtCheck = ahead;
            _queuedAtCheck = queued;
            var idleFor = _options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastActivity));
            if (idleFor >= _options.IdleTimeout)
            {
                Stop(StopReason.IdleTimeout);
                return;
            }
            try
            {
                _idleTimer?.Change(_options.IdleTimeout - idleFor, Timeout.InfiniteTimeSpan);
            }
            catch (ObjectDisposedException)
            {
                // The run ended while this check was in flight.
            }
        }

        /// <summary>
        /// The caller's token: the run ends as cancelled unless it had already stopped. An HTTP/2 tunnel's token is its
        /// request's, which aborting the tunnel's stream cancels: a destination that reset its connection was counted
        /// as the client's failure.
        /// </summary>
        private void StopOnCancel() => Stop(StopReason.Canceled);

        /// <summary>
        /// Ends the run for <paramref name="reason"/>: both transports are torn down, which ends every pending read and
        /// write (once). A run already stopped keeps the reason it stopped for.
        /// </summary>
        private void Stop(StopReason reason)
        {
            if (Interlocked.CompareExchange(ref _stopped, (int)reason, 0) == 0)
            {
                _client.Abort();
                _upstream.Abort();
            }
        }

        public void Dispose()
        {
            _idleTimer?.Dispose();
            _stopOnCancel.Dispose();
        }

        private static SocketError SocketErrorOf(Exception? error) => error switch
        {
            SocketException socket => socket.SocketErrorCode,
            IOException { InnerException: SocketException socket } => socket.SocketErrorCode,
            _ => SocketError.Success,
        };
    }

    /// <summary>Why a run was stopped before both directions ended by themselves (0, then <see cref="Finished"/>: it was not).</summary>
    private enum StopReason
    {
        /// <summary>A direction failed, or a bug ended it.</summary>
        Ended = 1,
        IdleTimeout,
        Canceled,

        /// <summary>Not stopped: both directions had ended by themselves (set last, so that no stop comes after).</summary>
        Finished,
    }

    private enum DirectionEnd
    {
        EndOfStream,
        Stopped,
        Failed,
    }

    private readonly record struct DirectionResult(DirectionEnd Kind, PumpSide Side, Exception? Error);
}
