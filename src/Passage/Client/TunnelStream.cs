using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// The application's end of a tunnel: reads and writes go to the relay's tunnel stream, every write
/// is flushed (an HTTP/2 request body is otherwise held back), and disposal ends the exchange.
/// </summary>
internal sealed class TunnelStream(Stream inner, IDisposable? exchange) : DelegatingStream(inner)
{
    public override void Write(byte[] buffer, int offset, int count)
    {
        Inner.Write(buffer, offset, count);
        Inner.Flush();
    }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        await Inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
        await Inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            exchange?.Dispose();
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await base.DisposeAsync().ConfigureAwait(false);
        exchange?.Dispose();
    }
}
