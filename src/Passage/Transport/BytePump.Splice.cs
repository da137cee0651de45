using System.Buffers;
using static Passage.Transport.LinuxSplice;

namespace Passage.Transport;

/// <summary>The zero-copy path of the pump: splice(2) between two plain sockets on Linux.</summary>
public static partial class BytePump
{
    private sealed partial class PumpRun
    {
        /// <summary>
        /// Bytes copied out of the pipe and sent the ordinary way when the destination's send buffer
        /// is full: that send is how the direction waits for writability (see <see cref="SpliceAsync"/>).
        /// </summary>
        private const int WritabilityProbeSize = 16 * 1024;

        /// <summary>
        /// Moves <paramref name="from"/> → <paramref name="to"/> with splice(2) until end of stream or
        /// a failure. Returns null, before anything was lost, when this direction must take the copy
        /// path instead (splice refused with EINVAL/ENOSYS, no pipe to be had, a blocking socket).
        /// </summary>
        /// <remarks>
        /// <code>
        ///   wait: zero-byte ReceiveAsync on the source (epoll; no pipe held while parked)
        ///     │ readable (or end of stream, or error)
        ///     ▼
        ///   fill: splice source → pipe ──EAGAIN──► back to wait (pipe released if the wait parks)
        ///     │ n bytes                  └─0─────► end of stream: pipe is empty ⇒ CompleteWrites
        ///     ▼
        ///   drain: splice pipe → destination until empty, then fill again
        ///     │ EAGAIN (send buffer full)
        ///     ▼
        ///   read ≤16 KiB from the pipe head, WriteAsync it (the runtime's epoll wait for writability)
        /// </code>
        /// <para>Waiting for writability without a thread: the runtime offers no readiness-only wait for
        /// sending. A zero-byte <c>Socket.SendAsync</c> completes at once even on a full socket (send(2)
        /// of nothing succeeds), <c>Socket.Poll</c>/<c>Select</c> block a thread, and a poll loop with
        /// back-off costs latency and throughput. A private epoll instance would need a thread of its
        /// own. So when splicing out returns EAGAIN, the direction copies a small chunk from the head
        /// of the pipe (order is kept: the pipe is FIFO) and sends it with the runtime's
        /// <c>SendAsync</c>, which parks on the runtime's epoll until the socket drains. TCP reports
        /// writable only once a third of the send buffer is free, so each such wait is followed by
        /// a long zero-copy stretch and the copied share stays small (0.1–0.3% of the bytes on
        /// loopback, bench/RESULTS.md).</para>
        /// <para>The pipe is rented when data arrives and given back when the direction parks; spare
        /// empty pipes are kept process-wide (a few, see <see cref="SplicePipe"/>), since creating and
        /// closing one per burst measurably cost throughput. Its size is
        /// <see cref="PumpOptions.BufferSize"/>, as asked of F_SETPIPE_SZ.</para>
        /// <para>The runtime puts a socket in non-blocking mode on its first async operation. The source
        /// has had one (the zero-byte receive); the destination may not have yet, since the opposite
        /// direction might not have started, so until it is seen non-blocking the direction sends
        /// through the same chunked path, whose <c>SendAsync</c> switches it.</para>
        /// </remarks>
        private async Task<DirectionResult?> SpliceAsync(IDuplexConnection from, IDuplexConnection to, PumpSide fromSide, PumpSide toSide)
        {
            var source = from.Socket!;
            var destination = to.Socket!;
            var token = _stop.Token;
            SplicePipe? pipe = null;
            var sourceNonBlocking = false;
            var destinationNonBlocking = false;
            var spliceWorked = false;
            var unbroken = 0;
            try
            {
                while (true)
                {
                    try
                    {
                        var wait = Waited(from.ReadAsync(Memory<byte>.Empty, token), ref unbroken);
                        if (!wait.IsCompleted && pipe is not null)
                        {
                            // Going idle: an idle direction holds no pipe (it is empty here).
                            pipe.Return();
                            pipe = null;
                        }
                        await wait.ConfigureAwait(false);
                        if (!sourceNonBlocking && !(sourceNonBlocking = SplicePipe.IsNonBlocking(source)))
                        {
                            // A splice from it would park this thread-pool thread.
                            return null;
                        }
                    }
                    catch (Exception e)
                    {
                        return Ended(fromSide, e);
                    }

                    // Created lazily: only once data is there.
                    pipe ??= SplicePipe.Rent(_options.BufferSize, out _);
                    if (pipe is null)
                    {
                        // Out of descriptors: the copy path needs none. Nothing is in flight.
                        return null;
                    }

                    while (true)
                    {
                        long moved;
                        try
                        {
                            moved = pipe.FillFrom(source);
                        }
                        catch (Exception e)
                        {
                            return Ended(fromSide, e);
                        }
                        if (moved == -EAGAIN)
                        {
                            // The pipe is drained before every fill, so this means the source ran dry.
                            break;
                        }
                        if (moved < 0)
                        {
                            if (!spliceWorked && MeansUnsupported((int)-moved))
                            {
                                NoteRefusal((int)-moved);
                                return null;
                            }
                            return Ended(fromSide, ToSocketException((int)-moved));
                        }
                        if (moved == 0)
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
                        spliceWorked = true;
                        Touch();

                        var copyOut = false;
                        while (pipe.Count > 0)
                        {
                            long sent;
                            try
                            {
                                destinationNonBlocking = destinationNonBlocking || SplicePipe.IsNonBlocking(destination);
                                sent = copyOut || !destinationNonBlocking ? -EAGAIN : pipe.DrainTo(destination);
                            }
                            catch (Exception e)
                            {
                                return Ended(toSide, e);
                            }
                            if (sent > 0)
                            {
                                Delivered(toSide, (int)sent);
                                continue;
                            }
                            if (sent != -EAGAIN)
                            {
                                if (!MeansUnsupported((int)-sent))
                                {
                                    return Ended(toSide, ToSocketException((int)-sent));
                                }
                                // The destination takes no spliced pages: send what is in the pipe the
                                // ordinary way, then let the copy path carry on.
                                NoteRefusal((int)-sent);
                                copyOut = true;
                            }

                            var chunk = ArrayPool<byte>.Shared.Rent(WritabilityProbeSize);
                            try
                            {
                                var count = pipe.ReadInto(chunk, Math.Min(pipe.Count, WritabilityProbeSize));
                                if (count <= 0)
                                {
                                    return Ended(toSide, new IOException($"Reading the splice pipe failed (errno {-count})."));
                                }
                                await Waited(to.WriteAsync(chunk.AsMemory(0, count), token), ref unbroken).ConfigureAwait(false);
                                Delivered(toSide, count);
                            }
                            catch (Exception e)
                            {
                                return Ended(toSide, e);
                            }
                            finally
                            {
                                ArrayPool<byte>.Shared.Return(chunk);
                            }
                        }
                        if (copyOut)
                        {
                            return null;
                        }
                        if ((unbroken += (int)moved) >= FairShare)
                        {
                            // The pipe is empty here: nothing is held across the turn given up.
                            unbroken = 0;
                            await Task.Yield();
                        }
                    }
                }
            }
            finally
            {
                // Every way out (end, failure, stop, fallback) gives the pipe back; one still holding
                // bytes is closed.
                pipe?.Return();
            }
        }
    }
}
