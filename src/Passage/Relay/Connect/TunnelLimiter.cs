using System.Net;

namespace Passage.Relay.Connect;

/// <summary>
/// Counts open tunnels overall and per client (<see cref="ClientKey"/>: an IPv4 address, an IPv6 /64), refusing one more
/// at either limit at once.
/// </summary>
internal sealed class TunnelLimiter(int maxTunnels, int maxPerClient)
{
    private readonly Dictionary<IPAddress, int> _perClient = new();
    private readonly object _gate = new();
    private int _open;

    /// <summary>Tunnels open now.</summary>
    public int Open => Volatile.Read(ref _open);

    /// <summary>Takes a slot for <paramref name="client"/>; null when a limit is reached.</summary>
    public Lease? TryAcquire(IPAddress? client)
    {
        var key = ClientKey.Of(client);
        lock (_gate)
        {
            if (_open >= maxTunnels)
            {
                return null;
            }
            var mine = _perClient.GetValueOrDefault(key);
            if (mine >= maxPerClient)
            {
                return null;
            }
            _perClient[key] = mine + 1;
            _open++;
        }
        return new Lease(this, key);
    }

    private void Release(IPAddress key)
    {
        lock (_gate)
        {
            _open--;
            var left = _perClient[key] - 1;
            if (left == 0)
            {
                _perClient.Remove(key);
            }
            else
            {
                _perClient[key] = left;
            }
        }
    }

    /// <summary>A held slot; disposing it gives the slot back (once).</summary>
    public sealed class Lease(TunnelLimiter owner, IPAddress key) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0)
            {
                owner.Release(key);
            }
        }
    }
}
