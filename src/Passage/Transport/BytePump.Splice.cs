using System.Buffers;
using static Passage.Transport.LinuxSplice;

namespace Passage.Transport;

/// <summary>The zero-copy path of the pump: splice(2) between two plain sockets on Linux.</summary>
public static partial class BytePump
{
    private sealed partial class Direction
    {
        /// <summary>
        /// Bytes copied out of the pipe and sent the ordinary way when the destination's send buffer
        /// is full: that send is how the direction waits for writability (see <see cref="SpliceAsync"/>).
        /// </summary>
        private const int WritabilityProbeSize = 16 * 1024;

        // Splice state: the pipe is held only while data flows (released when the direction parks).
        private SplicePipe? _pipe;
        private bool _sourceNonBlocking;
        private bool _destinationNonBlocking;
        private bool _spliceWorked;

        /// <summary>
        /// One burst of <see cref="_from"/> → <see cref="_to"/> with splice(2), the source being readable:
        /// null when the source ran dry, or how the direction ended. Where it cannot splice (splice
        /// refused with EINVAL/ENOSYS, a blocking socket, no pipe to be had) it copies instead, before
        /// anything was lost: for good, except without a pipe (then for this burst only). Each such
        /// fallback is counted (<see cref="SpliceFallbacks"/>).
        /// </summary>
        /// <remarks>
        /// <code>
        ///   (parked: zero-byte read of the source, no pipe held; see Direction)
        ///     │ readable (or end of stream, or error)
        ///     ▼
        ///   first read: recv ≤32 KiB, send it ──short──► source dry: park again (no pipe taken)
        ///     │ filled (a bulk burst; skipped while a pipe is still held from the burst before)
        ///     ▼
        ///   fill: splice source → pipe ──EAGAIN──► source dry: park again
        ///     │ n bytes                  └─0─────► end of stream: pipe is empty ⇒ CompleteWrites
        ///     ▼
        ///   drain: splice pipe → destination until empty, then fill again
        ///     │ EAGAIN (send buffer full)
        ///     ▼
        ///   a SocketConnection: wait for room (no bytes in hand), then drain on
        ///   another end: read ≤16 KiB from the pipe head, WriteAsync it (which waits for writability)
        /// </code>
        /// <para>Waiting for writability without a thread: a <see cref="SocketConnection"/> with the
        /// relay's own readiness (<see cref="SocketReadiness"/>, Linux) waits for the report that room freed
        /// up, which the refused splice itself arms, and nothing leaves the pipe. The runtime offers no such
        /// wait: a zero-byte <c>Socket.SendAsync</c> completes at once even on a full socket (send(2) of
        /// nothing succeeds), and <c>Socket.Poll</c>/<c>Select</c> block a thread. So for any other
        /// destination the direction copies a small chunk from the head of the pipe (order is kept: the
        /// pipe is FIFO) and sends it with the destination's <c>WriteAsync</c>, which waits for the socket
        /// to drain. TCP reports writable only once a third of the send buffer is free, so each such wait
        /// is followed by a long zero-copy stretch and the copied share stays small (0.1–0.3% of the bytes
        /// on loopback, bench/RESULTS.md).</para>
        /// <para>The pipe is rented when data arrives and given back when the direction parks; spare
        /// empty pipes are kept process-wide (a few, see <see cref="SplicePipe"/>), since creating and
        /// closing one per burst measurably cost throughput. Its size is
        /// <see cref="PumpOptions.PipeSize"/>, or less as the process's budget for large pipes fills
        /// (<see cref="SplicePipe.LargeSize"/>).</para>
        /// <para>Splicing needs both sockets in non-blocking mode. A <see cref="SocketConnection"/> puts
        /// its socket so from the start; another end's socket is asked (fcntl), and since the runtime
        /// switches a socket only on its first async operation, until the destination is seen
        /// non-blocking the direction sends through the same chunked path, whose <c>WriteAsync</c>
        /// switches it.</para>
        /// </remarks>
        private async ValueTask<DirectionResult?> SpliceAsync()
        {
            var source = _from.Socket!;
            var destination = _to.Socket!;
            try
            {
                if (!_sourceNonBlocking && !(_sourceNonBlocking = KnownNonBlocking(_from) || SplicePipe.IsNonBlocking(source)))
                {
                    // A splice from it would park this thread.
                    return await CopyInsteadAsync(SpliceFallback.BlockingSocket).ConfigureAwait(false);
                }
            }
            catch (Exception e)
            {
                return _run.Ended(_fromSide, e);
            }

            var watched = _from as SocketConnection;
            // A destination with the relay's own readiness can be waited on for room without sending.
            var roomFor = _to is SocketConnection { IsNonBlocking: true } writable ? writable : null;
            if (watched is { IsNonBlocking: true } && _pipe is null)
            {
                // A burst starts with an ordinary read of a little: most messages (a request, an answer,
                // a TLS record) are smaller, and for them recv+send is as many calls as two splices, takes
                // no pipe, and a short read tells that the socket is empty, so the park that follows needs
                // no call to find out. Only what fills it goes on by splice.
                var (ended, spliceOn) = await FirstReadAsync(watched).ConfigureAwait(false);
                if (!spliceOn)
                {
                    return ended;
                }
            }

            // Created lazily: only once data is there.
            var noPipe = 0;
            _pipe ??= SplicePipe.Rent(_run.Options.PipeSize, out noPipe);
            if (_pipe is not { } pipe)
            {
                // Out of descriptors or past the pipe quota: the copy path needs neither. Nothing is in flight. Only
                // this burst is copied: pipes come free as other directions park, and the next burst asks again.
                SpliceFallbacks.CountNoPipe(noPipe);
                // The first read may have emptied the source: then park, rather than wait in the copy's
                // read holding its buffer.
                var probe = StartReadable();
                if (!probe.IsCompleted)
                {
                    _nextReadable = probe;
                    return null;
                }
                return FailedWait(probe) ?? await CopyAsync().ConfigureAwait(false);
            }

            while (true)
            {
                long moved;
                var mark = watched?.ReadMark ?? 0;
                try
                {
                    moved = pipe.FillFrom(source);
                }
                catch (Exception e)
                {
                    return _run.Ended(_fromSide, e);
                }
                if (moved == -EAGAIN)
                {
                    // The pipe is drained before every fill, so this means the source ran dry; the park's
                    // zero-byte read need not ask the kernel again. Or the source holds urgent data, at whose
                    // mark splice(2) stops for good (tcp_read_sock): the socket says so (the zero-byte read
                    // then asks), and giving the pipe back makes the next burst start with an ordinary read,
                    // which steps over it. Only then: a bulk burst that found the source dry for a moment
                    // goes on splicing with the pipe it holds, without a first read's copy.
                    watched?.NoteDrained(mark);
                    if (watched is { ShortReadUnsure: true })
                    {
                        ReleasePipe();
                    }
                    return null;
                }
                if (moved < 0)
                {
                    if (!_spliceWorked && MeansUnsupported((int)-moved))
                    {
                        NoteRefusal((int)-moved);
                        return await CopyInsteadAsync(SpliceFallback.Refused).ConfigureAwait(false);
                    }
                    return _run.Ended(_fromSide, ToSocketException((int)-moved));
                }
                if (moved == 0)
                {
                    return await PassEndOfStreamAsync().ConfigureAwait(false);
                }
                _spliceWorked = true;
                _run.Touch();

                var copyOut = false;
                var roomWaited = false;
                while (pipe.Count > 0)
                {
                    long sent;
                    var writeMark = roomFor?.WriteMark ?? 0;
                    try
                    {
                        _destinationNonBlocking = _destinationNonBlocking || KnownNonBlocking(_to) || SplicePipe.IsNonBlocking(destination);
                        sent = copyOut || !_destinationNonBlocking ? -EAGAIN : pipe.DrainTo(destination);
                    }
                    catch (Exception e)
                    {
                        return _run.Ended(_toSide, e);
                    }
                    if (sent > 0)
                    {
                        // Every byte the destination took counted in its Written, as a write's are: the idle check
                        // compares the two (PumpRun.WrittenAhead).
                        (_to as SocketConnection)?.CountSpliced(sent);
                        _run.Delivered(_toSide, (int)sent, waited: roomWaited);
                        roomWaited = false;
                        continue;
                    }
                    if (sent != -EAGAIN)
                    {
                        if (!MeansUnsupported((int)-sent))
                        {
                            return _run.Ended(_toSide, ToSocketException((int)-sent));
                        }
                        // The destination takes no spliced pages: send what is in the pipe the
                        // ordinary way, then let the copy path carry on.
                        NoteRefusal((int)-sent);
                        SpliceFallbacks.Count(SpliceFallback.Refused);
                        copyOut = true;
                    }
                    else if (roomFor is not null && !copyOut)
                    {
                        // The send buffer is full: wait for room holding no bytes but the pipe's, then splice on.
                        try
                        {
                            // Bytes sent after a full send buffer are activity whether or not this wait found room at
                            // once (the room was reported since the last send): a slow reader that frees a little at a
                            // time before each wait moved bytes for as long as it read, and was cut at the idle timeout.
                            roomWaited = true;
                            await Waited(roomFor.WaitWritableAsync(writeMark, default)).ConfigureAwait(false);
                        }
                        catch (Exception e)
                        {
                            return _run.Ended(_toSide, e);
                        }
                        continue;
                    }

                    var chunk = ArrayPool<byte>.Shared.Rent(WritabilityProbeSize);
                    var written = PumpRun.Written(_to);
                    try
                    {
                        var count = pipe.ReadInto(chunk, Math.Min(pipe.Count, WritabilityProbeSize));
                        if (count <= 0)
                        {
                            return _run.Ended(_toSide, new IOException($"Reading the splice pipe failed (errno {-count})."));
                        }
                        await Waited(_to.WriteAsync(chunk.AsMemory(0, count), default), out var waited).ConfigureAwait(false);
                        _run.Delivered(_toSide, count, waited);
                    }
                    catch (Exception e)
                    {
                        return _run.WriteFailed(_to, _toSide, written, e);
                    }
                    finally
                    {
                        ArrayPool<byte>.Shared.Return(chunk);
                    }
                }
                if (copyOut)
                {
                    // The pipe is empty: the copy path takes over from the next wait for the source.
                    _splice = false;
                    ReleasePipe();
                    return null;
                }
                if ((_unbroken += (int)moved) >= FairShare)
                {
                    // The pipe is empty here: nothing is held across the turn given up.
                    _unbroken = 0;
                    await SocketReadiness.Yield();
                }
                if (moved < pipe.Capacity)
                {
                    // A short fill: the source had nothing more for now (or the pipe ran out of slots). Park
                    // instead of asking again: the park's zero-byte read answers at once when more is there,
                    // and a small message (a request, an answer) costs one splice fewer.
                    return null;
                }
            }
        }

        /// <summary>
        /// The first read of a burst, at most <see cref="FirstReadSize"/> bytes, sent the ordinary way.
        /// SpliceOn when it filled its buffer (splice the rest); else Ended is null when the source is
        /// empty now, or how the direction ended.
        /// </summary>
        private async ValueTask<(DirectionResult? Ended, bool SpliceOn)> FirstReadAsync(SocketConnection source)
        {
            var buffer = ArrayPool<byte>.Shared.Rent(FirstReadSize);
            try
            {
                // Never waits: the source was reported readable, and if that was for bytes taken already,
                // the direction parks again rather than wait holding this buffer.
                var read = source.ReceiveNow(buffer.AsSpan(0, FirstReadSize));
                if (read == -EAGAIN)
                {
                    return (null, false);
                }
                if (read < 0)
                {
                    return (_run.Ended(_fromSide, ToSocketException((int)-read)), false);
                }
                if (read == 0)
                {
                    return (await PassEndOfStreamAsync().ConfigureAwait(false), false);
                }
                _run.Touch();
                if (await SendAsync(buffer, 0, (int)read).ConfigureAwait(false) is { } failed)
                {
                    return (failed, false);
                }
                _unbroken += (int)read;
                return (null, read == FirstReadSize);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        /// <summary>
        /// How much the first read of a burst takes (<see cref="FirstReadAsync"/>): a full TLS record
        /// (16 KiB of payload and its overhead) and more.
        /// </summary>
        private const int FirstReadSize = 32 * 1024;

        /// <summary>A <see cref="SocketConnection"/> that keeps its socket non-blocking needs no fcntl(2) to say so.</summary>
        private static bool KnownNonBlocking(IDuplexConnection end) => end is SocketConnection { IsNonBlocking: true };

        /// <summary>Leaves the splice path for good (its pipe is empty here) and copies what the source has.</summary>
        private ValueTask<DirectionResult?> CopyInsteadAsync(SpliceFallback reason)
        {
            SpliceFallbacks.Count(reason);
            _splice = false;
            ReleasePipe();
            return CopyAsync();
        }

        /// <summary>Gives the pipe back (one still holding bytes is closed).</summary>
        private void ReleasePipe()
        {
            _pipe?.Return();
            _pipe = null;
        }
    }
}
