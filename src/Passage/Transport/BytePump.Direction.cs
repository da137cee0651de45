using System.Buffers;
using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>One direction of the pump, and the copy path.</summary>
public static partial class BytePump
{
    /// <summary>
    /// One direction of a run: moves its source's bytes to its destination in bursts, and between
    /// bursts parks on a zero-byte read of the source with nothing but a callback to itself.
    /// </summary>
    /// <remarks>
    /// <code>
    ///   Start ─► burst (first: the preamble) ─► park: zero-byte read of the source
    ///              ▲      │ ended                  │ readable (or end of stream, or error)
    ///              │      ▼                        ▼
    ///              │   DirectionEnded         burst: splice or copy until the source runs dry
    ///              └───────────────────────────────┘
    /// </code>
    /// <para>A burst is an async method only while it runs: one that completes without waiting (the
    /// usual case: data was there, it went out at once) allocates nothing, and one that has to wait
    /// (a full destination, its fair share given up) lives only until it is done. An idle direction
    /// therefore holds no async frame, no buffer and no pipe: the source's pending read refers to
    /// this object's one cached callback, and that is all. Only one step of a direction runs at a
    /// time (each is started by the end of the one before), so its fields need no locking.</para>
    /// </remarks>
    private sealed partial class Direction
    {
        private readonly PumpRun _run;
        private readonly IDuplexConnection _from;
        private readonly IDuplexConnection _to;
        private readonly PumpSide _fromSide;
        private readonly PumpSide _toSide;
        private readonly Action _resume;
        private bool _splice;
        // What _resume is to pick up: the source became readable, or a burst that had to wait is done.
        private bool _parked;
        private ValueTask<int> _readable;
        private ValueTask<DirectionResult?> _burst;
        // A zero-byte read of the source that a copy burst started and found pending: the park to come.
        private ValueTask<int>? _nextReadable;
        // Bytes moved since this direction last had to wait (see FairShare).
        private int _unbroken;

        public Direction(PumpRun run, IDuplexConnection from, IDuplexConnection to, PumpSide fromSide, PumpSide toSide, bool splice)
        {
            _run = run;
            _from = from;
            _to = to;
            _fromSide = fromSide;
            _toSide = toSide;
            _splice = splice;
            _resume = Resume;
        }

        public void Start() => Drive(_run.WritePreambleAsync(_to, _toSide));

        private void Resume()
        {
            if (_parked)
            {
                var readable = _readable;
                _readable = default;
                Drive(Burst(readable));
            }
            else
            {
                var burst = _burst;
                _burst = default;
                Drive(burst);
            }
        }

        /// <summary>
        /// Runs this direction from a burst on: parks when the burst found the source dry, goes on at
        /// once while the source stays readable, and returns when something has to be waited for.
        /// </summary>
        private void Drive(ValueTask<DirectionResult?> burst)
        {
            while (true)
            {
                if (!burst.IsCompleted)
                {
                    _burst = burst;
                    _parked = false;
                    burst.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_resume);
                    return;
                }
                DirectionResult? ended;
                try
                {
                    ended = burst.Result;
                }
                catch (Exception e)
                {
                    // A bug, not a network failure (those come back as values): the run fails with it.
                    End(new DirectionResult(DirectionEnd.Stopped, PumpSide.None, null), e);
                    return;
                }
                if (ended is { } result)
                {
                    End(result, null);
                    return;
                }

                // Wait for data without holding memory (STYLE habit 5).
                var readable = TakeNextReadable() ?? StartReadable();
                if (!readable.IsCompleted)
                {
                    _unbroken = 0;
                    // Going idle: an idle direction holds no pipe (it is empty here).
                    ReleasePipe();
                    _readable = readable;
                    _parked = true;
                    readable.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(_resume);
                    return;
                }
                burst = Burst(readable);
            }
        }

        private static async Task Observe(ValueTask<int> read)
        {
            try
            {
                await read.ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The run has ended already and reported what ended it.
            }
        }

        /// <summary>A zero-byte read of the source: completes when it has something (or ended, or failed).</summary>
        private ValueTask<int> StartReadable()
        {
            try
            {
                return _from.ReadAsync(Memory<byte>.Empty, default);
            }
            catch (Exception e)
            {
                return ValueTask.FromException<int>(e);
            }
        }

        /// <summary>The zero-byte read a copy burst left pending, if any (taken: the caller owns it now).</summary>
        private ValueTask<int>? TakeNextReadable()
        {
            var readable = _nextReadable;
            _nextReadable = null;
            return readable;
        }

        /// <summary>The burst that follows a completed wait for the source: its failure, or the data moved.</summary>
        private ValueTask<DirectionResult?> Burst(ValueTask<int> readable) =>
            FailedWait(readable) is { } failed ? new ValueTask<DirectionResult?>(failed)
            : _splice ? SpliceAsync() : CopyAsync();

        /// <summary>How the direction ended if a completed wait for the source failed; null when it found data (or the end).</summary>
        private DirectionResult? FailedWait(ValueTask<int> readable)
        {
            try
            {
                readable.GetAwaiter().GetResult();
                return null;
            }
            catch (Exception e)
            {
                return _run.Ended(_fromSide, e);
            }
        }

        private void End(DirectionResult result, Exception? fault)
        {
            ReleasePipe();
            if (TakeNextReadable() is { } pending)
            {
                // Ends with the run's close of the source; nobody needs what it says then.
                _ = Observe(pending);
            }
            _run.DirectionEnded(_toSide, result, _splice ? PumpPath.Splice : PumpPath.Copy, fault);
        }

        /// <summary>
        /// Copies through a pooled buffer while the source has data. Null when it ran dry (the buffer
        /// is back in the pool then), or how the direction ended.
        /// </summary>
        /// <remarks>
        /// Before sending, it fills the buffer with what the source has at once: a source that hands out
        /// a unit per read (a TLS stream gives one record, 16 KiB, per read) would otherwise cost a send
        /// per unit. What it has at once is asked with a zero-byte read; one that does not complete
        /// there and then is the park that follows (left in <see cref="_nextReadable"/>), so finding
        /// the source dry costs nothing more than parking did.
        /// </remarks>
        private async ValueTask<DirectionResult?> CopyAsync()
        {
            var buffer = ArrayPool<byte>.Shared.Rent(_run.Options.BufferSize);
            // Cleared when a read into the buffer is left waiting: it ends only with the run's teardown, after this returns,
            // and may yet fill the buffer, which must then not be another connection's.
            var pooled = true;
            try
            {
                while (true)
                {
                    int filled;
                    try
                    {
                        filled = await Waited(_from.ReadAsync(buffer, default)).ConfigureAwait(false);
                    }
                    catch (Exception e)
                    {
                        return _run.Ended(_fromSide, e);
                    }

                    if (filled == 0)
                    {
                        return await PassEndOfStreamAsync().ConfigureAwait(false);
                    }

                    _run.Touch();
                    var sent = 0;
                    Exception? sourceFault = null;
                    var endOfStream = false;
                    while (filled < buffer.Length)
                    {
                        var probe = StartReadable();
                        if (!probe.IsCompleted)
                        {
                            _nextReadable = probe;
                            break;
                        }
                        ValueTask<int> next;
                        try
                        {
                            probe.GetAwaiter().GetResult();
                            next = _from.ReadAsync(buffer.AsMemory(filled), default);
                        }
                        catch (Exception e)
                        {
                            sourceFault = e;
                            break;
                        }
                        if (!next.IsCompleted)
                        {
                            // Readable, yet this read waits (the rest of a TLS record is on its way): what is
                            // here goes out meanwhile.
                            if (await SendAsync(buffer, sent, filled).ConfigureAwait(false) is { } failed)
                            {
                                pooled = false;
                                _ = Observe(next);
                                return failed;
                            }
                            sent = filled;
                        }
                        int more;
                        try
                        {
                            more = await Waited(next).ConfigureAwait(false);
                        }
                        catch (Exception e)
                        {
                            sourceFault = e;
                            break;
                        }
                        if (more == 0)
                        {
                            endOfStream = true;
                            break;
                        }
                        filled += more;
                    }

                    // The bytes that came before an end or a failure of the source are delivered first.
                    if (await SendAsync(buffer, sent, filled).ConfigureAwait(false) is { } sendFailed)
                    {
                        return sendFailed;
                    }
                    if (sourceFault is not null)
                    {
                        return _run.Ended(_fromSide, sourceFault);
                    }
                    if (endOfStream)
                    {
                        return await PassEndOfStreamAsync().ConfigureAwait(false);
                    }
                    if ((_unbroken += filled) >= FairShare)
                    {
                        _unbroken = 0;
                        await SocketReadiness.Yield();
                        if (_splice)
                        {
                            // A splicing direction copying for want of a pipe: the next burst asks for one
                            // again, even while the source never runs dry.
                            return null;
                        }
                    }
                    if (_nextReadable is not null)
                    {
                        // The source is dry for now: park (on the read already started) without the buffer.
                        return null;
                    }
                }
            }
            finally
            {
                if (pooled)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }

        /// <summary>Sends buffer[from..to] (if anything); null, or how the direction ended.</summary>
        private async ValueTask<DirectionResult?> SendAsync(byte[] buffer, int from, int to)
        {
            if (to == from)
            {
                return null;
            }
            bool waited;
            var written = PumpRun.Written(_to);
            try
            {
                await Waited(_to.WriteAsync(buffer.AsMemory(from, to - from), default), out waited).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                return _run.WriteFailed(_to, _toSide, written, e);
            }
            _run.Delivered(_toSide, to - from, waited);
            return null;
        }

        /// <summary>
        /// The source ended: passes the half-close on to the destination. A source whose end was a reset that the other
        /// direction's write took the error of (<see cref="IEndOfStreamCheck"/>) failed instead: a
        /// reset is never passed on as a clean end (RFC 9113 §8.5: the tunnel's client is to learn of it).
        /// </summary>
        private async ValueTask<DirectionResult?> PassEndOfStreamAsync()
        {
            if (_from is IEndOfStreamCheck source && source.EndOfStreamWasFailure())
            {
                return _run.Ended(_fromSide, new SocketException((int)SocketError.ConnectionReset));
            }
            try
            {
                await _to.CompleteWritesAsync(default).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                return _run.Ended(_toSide, e);
            }
            return new DirectionResult(DirectionEnd.EndOfStream, PumpSide.None, null);
        }

        /// <summary>
        /// Bytes a direction may move without once having to wait before it lets other work run. A source that
        /// always has data and a destination that always has room never make a direction wait, and with inline
        /// completions its loop runs on a readiness thread that other connections' sockets share: without a turn
        /// to give up (<see cref="SocketReadiness.Yield"/>), one busy connection would hold theirs back for as
        /// long as it flows.
        /// </summary>
        private const int FairShare = 1024 * 1024;

        /// <summary>
        /// A write, noting when it will wait (which gives others their turn); <paramref name="waited"/> tells
        /// the caller so, for the idle clock.
        /// </summary>
        private ValueTask Waited(ValueTask operation, out bool waited)
        {
            waited = !operation.IsCompleted;
            if (waited)
            {
                _unbroken = 0;
            }
            return operation;
        }

        /// <summary><paramref name="operation"/>, noting when it will wait (which gives others their turn).</summary>
        private ValueTask<int> Waited(ValueTask<int> operation)
        {
            if (!operation.IsCompleted)
            {
                _unbroken = 0;
            }
            return operation;
        }
    }
}
