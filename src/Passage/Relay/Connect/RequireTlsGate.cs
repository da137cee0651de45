using System.Buffers;
using Passage.Relay.Passthrough;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// <c>--require-tls</c>: before relaying, read the client's first bytes inside the tunnel and go on
/// only if they form a TLS ClientHello (tokio-sando's "force HTTPS in the tunnel"). Nothing is
/// decrypted; the bytes read are forwarded unchanged as the pump's preamble.
/// </summary>
internal static class RequireTlsGate
{
    /// <summary>
    /// Reads until the bytes already held plus new ones form a complete ClientHello. Returns a copy
    /// of exactly those bytes (the pooled buffer they were read into is given back at once: the
    /// tunnel then holds no buffer while idle), or null when the bytes are not TLS, are malformed,
    /// are too large, or the client went quiet past <paramref name="timeout"/>.
    /// </summary>
    public static async Task<byte[]?> ReadClientHelloAsync(
        IDuplexConnection client, ReadOnlyMemory<byte> already, TimeSpan timeout, TimeProvider time, CancellationToken cancellationToken)
    {
        const int max = PassthroughOptions.DefaultMaxClientHelloBytes;
        const int room = max + 2048;
        // Each read's bytes are walked once: a hello trickled in one-byte records, parsed again from its start after
        // every read, cost seconds of CPU.
        var progress = default(ClientHelloProgress);
        if (!already.IsEmpty)
        {
            // What came behind the head is judged where it lies: a raised maxRequestHeadBytes lets it be up to a
            // MiB, and an array that large rented from the shared pool would stay in it.
            var first = ClientHelloParser.Resume(new ReadOnlySequence<byte>(already), max, ref progress);
            if (first.Status == ClientHelloStatus.Complete)
            {
                return already.ToArray();
            }
            if (first.Status != ClientHelloStatus.Incomplete || already.Length >= room)
            {
                return null;
            }
        }
        var buffer = ArrayPool<byte>.Shared.Rent(room);
        already.CopyTo(buffer);
        var filled = already.Length;
        using var deadline = new Deadline(timeout, time, cancellationToken);
        try
        {
            while (true)
            {
                if (filled > 0)
                {
                    var result = ClientHelloParser.Resume(new ReadOnlySequence<byte>(buffer, 0, filled), max, ref progress);
                    if (result.Status == ClientHelloStatus.Complete)
                    {
                        var hello = buffer.AsSpan(0, filled).ToArray();
                        ArrayPool<byte>.Shared.Return(buffer);
                        return hello;
                    }
                    if (result.Status != ClientHelloStatus.Incomplete || filled == buffer.Length)
                    {
                        break;
                    }
                }
                var read = await client.ReadAsync(buffer.AsMemory(filled), deadline.Token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }
                filled += read;
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // Silent, gone or stopped: not a ClientHello.
        }
        ArrayPool<byte>.Shared.Return(buffer);
        return null;
    }
}
