using System.Buffers;
using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>
/// Sends a last answer (an HTTP error, a TLS alert) and closes so that the peer actually reads it:
/// write, half-close, then read and discard until the peer closes or a short deadline passes.
/// Closing at once with unread bytes in the receive buffer would send a reset, and the peer's
/// kernel may drop the answer before the application sees it.
/// </summary>
public static class LingeringClose
{
    /// <summary>How long to wait for the peer to close after the answer: 2 s.</summary>
    public static readonly TimeSpan Deadline = TimeSpan.FromSeconds(2);

    /// <summary>Writes <paramref name="answer"/> (may be empty), half-closes, drains, disposes. Never throws for network failures.</summary>
    public static async Task CloseAsync(IDuplexConnection connection, ReadOnlyMemory<byte> answer, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(connection);
        using var deadline = new CancellationTokenSource(Deadline, time ?? TimeProvider.System);
        var sink = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            if (!answer.IsEmpty)
            {
                await connection.WriteAsync(answer, deadline.Token).ConfigureAwait(false);
            }
            await connection.CompleteWritesAsync(deadline.Token).ConfigureAwait(false);
            while (await connection.ReadAsync(sink, deadline.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer is gone or silent; closing is all that is left.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(sink);
        }
        await connection.DisposeAsync().ConfigureAwait(false);
    }
}
