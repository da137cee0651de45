using System.Buffers;
using System.Net.Sockets;

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
    /// <param name="cancellationToken">Ends the run (result <see cref="PumpEnd.Canceled"/>).</param>
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
        return new PumpRun(client, upstream, options ?? PumpOptions.Default, clientPreamble, cancellationToken).Start();
    }

    /// <summary>
    /// One relayed connection's run. Held while the connection is idle: itself, one pending
    /// direction each way and the task the caller awaits; nothing waits above the directions.
    /// </summary>
    private sealed partial class PumpRun : IDisposable
    {
        private readonly IDuplexConnection _client;
        private readonly IDuplexConnection _upstream;
        private readonly PumpOptions _options;
        private readonly CancellationToken _callerToken;
        private readonly CancellationTokenSource _stop;
        private readonly CancellationTokenRegistration _abortOnStop;
        private readonly ITimer? _idleTimer;
        private readonly bool _zeroCopy;
        private readonly TaskCompletionSource<PumpResult> _done = new();
        // Dropped once written: an idle connection keeps no copy of its first bytes.
        private ReadOnlyMemory<byte> _clientPreamble;
        private int _toUpstreamPath;
        private int _toClientPath;
        private long _lastActivity;
        private long _toUpstream;
        private long _toClient;
        private int _idleExpired;
        private DirectionResult _toUpstreamEnd;
        private DirectionResult _toClientEnd;
        private Exception? _fault;
        private int _firstEnded;
        private int _ended;

        public PumpRun(IDuplexConnection client, IDuplexConnection upstream, PumpOptions options, ReadOnlyMemory<byte> clientPreamble, CancellationToken callerToken)
        {
            _client = client;
            _upstream = upstream;
            _options = options;
            _clientPreamble = clientPreamble;
            _callerToken = callerToken;
            _stop = CancellationTokenSource.CreateLinkedTokenSource(callerToken);
            // Operations that ignore cancellation are unblocked by tearing the transports down.
            _abortOnStop = _stop.Token.Register(static state => ((PumpRun)state!).AbortBoth(), this);
            _lastActivity = options.TimeProvider.GetTimestamp();
            _zeroCopy = options.ZeroCopy && LinuxSplice.IsAvailable && client.Socket is not null && upstream.Socket is not null;
            if (options.IdleTimeout != Timeout.InfiniteTimeSpan)
            {
                _idleTimer = options.TimeProvider.CreateTimer(static state => ((PumpRun)state!).CheckIdle(), this, options.IdleTimeout, Timeout.InfiniteTimeSpan);
            }
        }

        /// <summary>Starts both directions; the task completes when both have ended.</summary>
        public Task<PumpResult> Start()
        {
            _ = MoveAsync(_client, _upstream, PumpSide.Client, PumpSide.Upstream);
            _ = MoveAsync(_upstream, _client, PumpSide.Upstream, PumpSide.Client);
            return _done.Task;
        }

        /// <summary>
        /// Called once by each direction as it ends. The first to end other than by end of stream
        /// stops the run; the second to end completes it.
        /// </summary>
        private void DirectionEnded(PumpSide toSide, DirectionResult result, Exception? fault)
        {
            if (toSide == PumpSide.Upstream)
            {
                _toUpstreamEnd = result;
            }
            else
            {
                _toClientEnd = result;
            }
            if (fault is not null)
            {
                Interlocked.CompareExchange(ref _fault, fault, null);
            }
            Interlocked.CompareExchange(ref _firstEnded, (int)toSide, 0);
            if (result.Kind != DirectionEnd.EndOfStream || fault is not null)
            {
                Stop();
            }
            if (Interlocked.Increment(ref _ended) < 2)
            {
                return;
            }

            var upstreamFirst = Volatile.Read(ref _firstEnded) == (int)PumpSide.Upstream;
            var result2 = Result(upstreamFirst ? _toUpstreamEnd : _toClientEnd, upstreamFirst ? _toClientEnd : _toUpstreamEnd) with
            {
                ClientToUpstreamPath = (PumpPath)Volatile.Read(ref _toUpstreamPath),
                UpstreamToClientPath = (PumpPath)Volatile.Read(ref _toClientPath),
            };
            var unexpected = Volatile.Read(ref _fault);
            Dispose();
            if (unexpected is not null)
            {
                _done.SetException(unexpected);
            }
            else
            {
                _done.SetResult(result2);
            }
        }

        private PumpResult Result(DirectionResult firstResult, DirectionResult secondResult)
        {
            var toUpstreamBytes = Interlocked.Read(ref _toUpstream);
            var toClientBytes = Interlocked.Read(ref _toClient);
            if (Volatile.Read(ref _idleExpired) != 0)
            {
                return new PumpResult(PumpEnd.IdleTimeout, PumpSide.None, toUpstreamBytes, toClientBytes);
            }
            if (_callerToken.IsCancellationRequested)
            {
                return new PumpResult(PumpEnd.Canceled, PumpSide.None, toUpstreamBytes, toClientBytes);
            }
            var failure = firstResult.Kind == DirectionEnd.Failed ? firstResult
                : secondResult.Kind == DirectionEnd.Failed ? secondResult
                : default;
            if (failure.Kind == DirectionEnd.Failed)
            {
                return new PumpResult(PumpEnd.Failed, failure.Side, toUpstreamBytes, toClientBytes, SocketErrorOf(failure.Error), failure.Error);
            }
            return new PumpResult(PumpEnd.Completed, PumpSide.None, toUpstreamBytes, toClientBytes);
        }

        private async Task MoveAsync(IDuplexConnection from, IDuplexConnection to, PumpSide fromSide, PumpSide toSide)
        {
            DirectionResult result;
            Exception? fault = null;
            try
            {
                // No hop to the thread pool to start: the first direction runs here until it has to wait or
                // has had its fair share, then the second starts (Start calls both in turn).
                if (await WritePreambleAsync(to, toSide).ConfigureAwait(false) is { } failed)
                {
                    result = failed;
                }
                else if (_zeroCopy && await SpliceAsync(from, to, fromSide, toSide).ConfigureAwait(false) is { } spliced)
                {
                    Volatile.Write(ref toSide == PumpSide.Upstream ? ref _toUpstreamPath : ref _toClientPath, (int)PumpPath.Splice);
                    result = spliced;
                }
                else
                {
                    result = await CopyAsync(from, to, fromSide, toSide).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                // A bug, not a network failure (those come back as values): the run fails with it.
                fault = e;
                result = new DirectionResult(DirectionEnd.Stopped, PumpSide.None, null);
            }
            DirectionEnded(toSide, result, fault);
        }

        /// <summary>
        /// Writes the client's preamble upstream, the ordinary way on either path (splicing takes over
        /// after it), and lets go of it. Null when written or when there is none.
        /// </summary>
        private ValueTask<DirectionResult?> WritePreambleAsync(IDuplexConnection to, PumpSide toSide)
        {
            if (toSide != PumpSide.Upstream || _clientPreamble.IsEmpty)
            {
                return default;
            }
            var preamble = _clientPreamble;
            _clientPreamble = default;
            return WriteAsync(preamble);

            async ValueTask<DirectionResult?> WriteAsync(ReadOnlyMemory<byte> preamble)
            {
                try
                {
                    await to.WriteAsync(preamble, _stop.Token).ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    return Ended(toSide, e);
                }
                Delivered(toSide, preamble.Length);
                return null;
            }
        }

        private async Task<DirectionResult> CopyAsync(IDuplexConnection from, IDuplexConnection to, PumpSide fromSide, PumpSide toSide)
        {
            var token = _stop.Token;
            byte[]? buffer = null;
            var unbroken = 0;
            try
            {
                while (true)
                {
                    int read;
                    try
                    {
                        if (buffer is null)
                        {
                            // Wait for data without holding memory (STYLE habit 5).
                            await Waited(from.ReadAsync(Memory<byte>.Empty, token), ref unbroken).ConfigureAwait(false);
                            buffer = ArrayPool<byte>.Shared.Rent(_options.BufferSize);
                        }
                        read = await Waited(from.ReadAsync(buffer, token), ref unbroken).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        return Ended(fromSide, e);
                    }

                    if (read == 0)
                    {
                        try
                        {
                            await to.CompleteWritesAsync(token).ConfigureAwait(false);
                        }
                        catch (Exception e)
                        {
                            return Ended(toSide, e);
                        }
                        return new DirectionResult(DirectionEnd.EndOfStream, PumpSide.None, null);
                    }

                    Touch();
                    try
                    {
                        await Waited(to.WriteAsync(buffer.AsMemory(0, read), token), ref unbroken).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        return Ended(toSide, e);
                    }
                    Delivered(toSide, read);
                    if ((unbroken += read) >= FairShare)
                    {
                        unbroken = 0;
                        await Task.Yield();
                    }

                    if (read < buffer.Length)
                    {
                        // A short read means the source is drained for now: go idle without the buffer.
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = null;
                    }
                }
            }
            finally
            {
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        /// <summary>
        /// Bytes a direction may move without once having to wait before it lets other work run. A source that
        /// always has data and a destination that always has room never make a direction wait, and with the
        /// runtime's inline socket completions its loop runs on an event thread that other connections' sockets
        /// share: without a turn to give up, one busy connection would hold theirs back for as long as it flows.
        /// </summary>
        private const int FairShare = 1024 * 1024;

        /// <summary><paramref name="operation"/>, noting in <paramref name="unbroken"/> when it will wait (which gives others their turn).</summary>
        private static ValueTask Waited(ValueTask operation, ref int unbroken)
        {
            if (!operation.IsCompleted)
            {
                unbroken = 0;
            }
            return operation;
        }

        /// <inheritdoc cref="Waited(ValueTask, ref int)"/>
        private static ValueTask<int> Waited(ValueTask<int> operation, ref int unbroken)
        {
            if (!operation.IsCompleted)
            {
                unbroken = 0;
            }
            return operation;
        }

        private DirectionResult Ended(PumpSide side, Exception error) =>
            _stop.IsCancellationRequested
                ? new DirectionResult(DirectionEnd.Stopped, PumpSide.None, null)
                : new DirectionResult(DirectionEnd.Failed, side, error);

        private void Delivered(PumpSide toSide, int count)
        {
            if (toSide == PumpSide.Upstream)
            {
                Interlocked.Add(ref _toUpstream, count);
            }
            else
            {
                Interlocked.Add(ref _toClient, count);
            }
            Touch();
        }

        private void Touch() => Volatile.Write(ref _lastActivity, _options.TimeProvider.GetTimestamp());

        private void CheckIdle()
        {
            var idleFor = _options.TimeProvider.GetElapsedTime(Volatile.Read(ref _lastActivity));
            if (idleFor >= _options.IdleTimeout)
            {
                Volatile.Write(ref _idleExpired, 1);
                Stop();
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

        private void Stop()
        {
            try
            {
                _stop.Cancel();
            }
            catch (ObjectDisposedException)
            {
                // Already finished.
            }
        }

        private void AbortBoth()
        {
            _client.Abort();
            _upstream.Abort();
        }

        public void Dispose()
        {
            _idleTimer?.Dispose();
            _abortOnStop.Dispose();
            _stop.Dispose();
        }

        private static SocketError SocketErrorOf(Exception? error) => error switch
        {
            SocketException socket => socket.SocketErrorCode,
            IOException { InnerException: SocketException socket } => socket.SocketErrorCode,
            _ => SocketError.Success,
        };
    }

    private enum DirectionEnd
    {
        EndOfStream,
        Stopped,
        Failed,
    }

    private readonly record struct DirectionResult(DirectionEnd Kind, PumpSide Side, Exception? Error);
}
