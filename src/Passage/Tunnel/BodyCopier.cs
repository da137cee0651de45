using System.Buffers;

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
    /// from one that went away).
    /// </summary>
    public static async Task<BodyCopyResult> CopyAsync(Stream source, Stream destination, CancellationToken cancellationToken, Action<Exception>? sourceFailed = null)
    {
        byte[]? buffer = null;
        try
        {
            while (true)
            {
                int read;
                try
                {
                    if (buffer is null)
                    {
                        // Hold no buffer while the sender is quiet; a stream without zero-byte reads returns at once.
                        read = await source.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
                        buffer = ArrayPool<byte>.Shared.Rent(BufferSize);
                    }
                    read = await source.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return BodyCopyResult.Canceled;
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
                    await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken).ConfigureAwait(false);
                    await destination.FlushAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    return BodyCopyResult.Canceled;
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
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>The exceptions a broken peer, a reset stream or a bad framing produce.</summary>
    public static bool IsIoFailure(Exception e) =>
        e is IOException or HttpRequestException or OperationCanceledException or ObjectDisposedException
            or InvalidDataException or Microsoft.AspNetCore.Http.BadHttpRequestException or InvalidOperationException;
}
