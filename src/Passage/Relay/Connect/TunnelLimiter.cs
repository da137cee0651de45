using System.Net;

namespace Passage.Relay.Connect;

/// <summary>
/// Counts open tunnels overall and per client, refusing one more at either limit at once. A client is an IPv4 address,
/// or an IPv6 address's /64: a host on IPv6 is given a whole /64 (SLAAC, privacy addresses, RFC 8981), so it can
/// open each connection from an address of its own, and a limit keyed by the whole address would not hold it.
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
        var key = Normalize(client);
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

    /// <summary>
    /// The key <paramref name="address"/> is counted under: an IPv4 address (mapped or not) itself, an IPv6 address's
    /// /64, a link-local IPv6 address itself.
    /// </summary>
    internal static IPAddress Normalize(IPAddress? address)
    {
        if (address is null)
        {
            return IPAddress.None;
        }
        if (address.IsIPv4MappedToIPv6)
        {
            return address.MapToIPv4();
        }
        // Every link-local address shares fe80::/64: there the whole address (and its interface) is the client.
        if (address.AddressFamily != System.Net.Sockets.AddressFamily.InterNetworkV6 || address.IsIPv6LinkLocal)
        {
            return address;
        }
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        bytes[8..].Clear();
        return new IPAddress(bytes);
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
