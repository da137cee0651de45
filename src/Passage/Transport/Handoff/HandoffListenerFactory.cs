using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Passage.Transport.Handoff;

/// <summary>
/// A Kestrel transport for <see cref="HandoffEndPoint"/>s: registered beside Kestrel's socket
/// transport, it binds only handoff endpoints and exposes their listeners to Passage.
/// </summary>
internal sealed class HandoffListenerFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private readonly Dictionary<string, HandoffListener> _listeners = new(StringComparer.Ordinal);
    private readonly object _gate = new();

    public bool CanBind(EndPoint endpoint) => endpoint is HandoffEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var handoff = endpoint as HandoffEndPoint ?? throw new NotSupportedException($"{endpoint} is not a handoff endpoint");
        var listener = new HandoffListener(handoff);
        lock (_gate)
        {
            _listeners[handoff.Name] = listener;
        }
        return ValueTask.FromResult<IConnectionListener>(listener);
    }

    /// <summary>The listener Kestrel bound for <paramref name="name"/>, once it has started.</summary>
    public HandoffListener Listener(string name)
    {
        lock (_gate)
        {
            return _listeners.TryGetValue(name, out var listener) ? listener : throw new InvalidOperationException($"Kestrel has not bound handoff:{name}");
        }
    }
}
