using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Passage.Transport.Handoff;

/// <summary>
/// The Kestrel side of a handoff endpoint: Kestrel accepts from here what Passage <see cref="Hand"/>s over.
/// </summary>
internal sealed class HandoffListener : IConnectionListener
{
    private readonly Channel<ConnectionContext> _incoming = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false });

    public HandoffListener(HandoffEndPoint endPoint) => EndPoint = endPoint;

    public EndPoint EndPoint { get; }

    /// <summary>Gives Kestrel a connection. False when Kestrel has stopped listening (the caller closes it).</summary>
    public bool Hand(ConnectionContext connection) => _incoming.Writer.TryWrite(connection);

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            return await _incoming.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (ChannelClosedException)
        {
            return null;
        }
    }

    public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        _incoming.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        _incoming.Writer.TryComplete();
        // Connections handed over but never accepted are closed here.
        while (_incoming.Reader.TryRead(out var orphan))
        {
            await orphan.DisposeAsync().ConfigureAwait(false);
        }
    }
}
