using System.Buffers;
using Microsoft.AspNetCore.Http;

namespace Passage.Tunnel;

/// <summary>
/// Moves one HTTP body from a stream to a stream, flushing after every chunk so nothing is held back
/// (a streamed response reaches its reader as it is produced). Backpressure comes from awaiting each write:
/// a slow reader slows its own writer, and only that one request's HTTP/2 stream window fills.
/// </summary>
/// <remarks>
/// Bodies are message payloads between two HTTP stacks, not connections, so they are not the
/// <see cref="Transport.BytePump"/>'s business: no half-close, one direction, a flush per chunk.
/// </remarks>
internal static class BodyCopier
{
    private const int BufferSize = 64 * 1024;

    /// <summary>
    /// Copies until <paramref name="source"/> ends. Never throws for I/O failures: they come back as the result, and
    /// what reading the source threw goes to <paramref name="sourceFailed"/> (to tell a sender that broke the framing
    /// from one that went away). A sender that sends no byte for <paramref name="senderIdle"/> (when positive and not
    /// infinite) has broken off too: <paramref name="sourceFailed"/> gets a 408 (RFC 9110 §15.5.9). A receiver that takes
    /// no byte for <paramref name="receiverIdle"/> (the same way) has gone too: <see cref="BodyCopyResult.ReceiverIdle"/>.
    /// </summary>
    public static async Task<BodyCopyResult> CopyAsync(
        Stream source, Stream destination, CancellationToken cancellationToken, Action<Exception>? sourceFailed = null, TimeSpan senderIdle = default,
        TimeSpan receiverIdle = default)
    {
        byte[]? buffer = null;
        var idle = senderIdle > TimeSpan.Zero ? new WaitClock(senderIdle, cancellationToken) : null;
        var taking = receiverIdle > TimeSpan.Zero ? new WaitClock(receiverIdle, cancellationToken) : null;
        try
        {
            while (true)
            {
                int read;
                try
                {
                    var waitToken = idle?.Start() ?? cancellationToken;
                    if (buffer is null)
                    {
                        // Hold no buffer while the sender is quiet; a stream without zero-byte reads returns at once.
                        read = await source.ReadAsync(Memory<byte>.Empty, waitToken).ConfigureAwait(false);
                        buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                    }
                    read = await source.ReadAsync(buffer, waitToken).ConfigureAwait(false);
                    idle?.Stop();
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return BodyCopyResult.Canceled;
                }
                catch (OperationCanceledException) when (idle is { Expired: true })
                {
                    sourceFailed?.Invoke(new BadHttpRequestException(
                        $"no byte of the request body came for {Configuration.Duration.Format(senderIdle)}", StatusCodes.Status408RequestTimeout));
                    return BodyCopyResult.SourceFailed;
                }
                catch (Exception e) when (IsIoFailure(e))
                {
                    sourceFailed?.Invoke(e);
                    return BodyCopyResult.SourceFailed;
                }
                if (read == 0)
                {
                    return BodyCopyResult.Completed;
                }
                try
                {
                    var writeToken = taking?.Start() ?? cancellationToken;
                    await destination.WriteAsync(buffer.AsMemory(0, read), writeToken).ConfigureAwait(false);
                    await destination.FlushAsync(writeToken).ConfigureAwait(false);
                    taking?.Stop();
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return BodyCopyResult.Canceled;
                }
                catch (OperationCanceledException) when (taking is { Expired: true })
                {
                    return BodyCopyResult.ReceiverIdle;
                }
                catch (Exception e) when (IsIoFailure(e))
                {
                    return BodyCopyResult.DestinationFailed;
                }
                if (read < buffer.Length / 2)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
        }
        finally
        {
            idle?.Dispose();
            taking?.Dispose();
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// The clock of a wait for the sender's next bytes, or for the receiver to take the last: one timed source for the
    /// whole copy, armed for each wait and disarmed after it; one that ran out just as its wait ended is replaced, so that
    /// only a wait that ran out fails.
    /// </summary>
    private sealed class WaitClock(TimeSpan limit, CancellationToken cancellationToken) : IDisposable
    {
        private CancellationTokenSource _clock = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        /// <summary>Whether a wait ran out (and not because of the copy's own token).</summary>
        public bool Expired => _clock.IsCancellationRequested && !cancellationToken.IsCancellationRequested;

        /// <summary>Arms the clock for a wait; its token ends the wait at the limit or with the copy's token.</summary>
        public CancellationToken Start()
        {
            _clock.CancelAfter(limit);
            return _clock.Token;
        }

        /// <summary>The wait ended with bytes (or the end): disarms the clock.</summary>
        public void Stop()
        {
            _clock.CancelAfter(Timeout.InfiniteTimeSpan);
            if (_clock.IsCancellationRequested)
            {
                _clock.Dispose();
                _clock = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            }
        }

        public void Dispose() => _clock.Dispose();
    }

    /// <summary>The exceptions a broken peer, a reset stream or a bad framing produce.</summary>
    public static bool IsIoFailure(Exception e) =>
        e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException
            or InvalidDataException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException;
}
