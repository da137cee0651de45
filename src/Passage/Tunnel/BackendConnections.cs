using System.Net;
using System.Net.Sockets;

namespace Passage.Tunnel;

/// <summary>
/// The server end's connections to its backend, pooled and upgraded alike, counted against one cap: the share of the
/// open-file limit left for them (<see cref="Transport.OpenFileLimit.ConnectionsThatFit(int)"/>). A connection takes a
/// slot before it opens and gives it back when it is closed. One more is not opened: the exchange that needed it is
/// refused (503, <c>connection_limit_reached</c>, RFC 9209 §2.3.12) instead of the process running out of descriptors.
/// </summary>
/// <remarks>
/// The pooled client's own cap (<see cref="SocketsHttpHandler.MaxConnectionsPerServer"/>, the same number) makes its
/// requests wait for a connection; each upgrade has a connection of its own outside that pool, so only this count
/// keeps the two together within the share.
/// </remarks>
/// <param name="limit">The most connections open at once; null for no cap.</param>
internal sealed class BackendConnections(int? limit)
{
    private int _open;

    /// <summary>The most connections open at once, or null.</summary>
    public int? Limit => limit;

    /// <summary>The failure a refused exchange is answered with.</summary>
    public static TunnelFailure LimitReached { get; } = new("connection_limit_reached", "too many connections to the backend are open");

    /// <summary>
    /// Opens a TCP connection to <paramref name="endpoint"/> in a free slot; the stream gives the slot back when disposed.
    /// </summary>
    /// <exception cref="LimitReachedException">Every slot is taken.</exception>
    /// <exception cref="SocketException">Connecting failed.</exception>
    public async ValueTask<Connection> ConnectAsync(DnsEndPoint endpoint, bool noDelay, CancellationToken cancellationToken)
    {
        if (!TryTake())
        {
            throw new LimitReachedException();
        }
        Socket? socket = null;
        try
        {
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = noDelay };
            await socket.ConnectAsync(endpoint, cancellationToken).ConfigureAwait(false);
            return new Connection(socket, this);
        }
        catch
        {
            socket?.Dispose();
            GiveBack();
            throw;
        }
    }

    /// <summary>Whether <paramref name="exception"/>, or one it wraps (the HTTP client wraps what its connect callback throws), is a refusal for want of a slot.</summary>
    public static bool IsLimitReached(Exception exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is LimitReachedException)
            {
                return true;
            }
        }
        return false;
    }

    private bool TryTake()
    {
        while (true)
        {
            var open = Volatile.Read(ref _open);
            if (limit is { } most && open >= most)
            {
                return false;
            }
            if (Interlocked.CompareExchange(ref _open, open + 1, open) == open)
            {
                return true;
            }
        }
    }

    private void GiveBack() => Interlocked.Decrement(ref _open);

    /// <summary>A backend connection holding its slot until it is disposed (once, however often that is called).</summary>
    public sealed class Connection : NetworkStream
    {
        private BackendConnections? _owner;

        internal Connection(Socket socket, BackendConnections owner)
            : base(socket, ownsSocket: true) => _owner = owner;

        /// <summary>A read for an exchange being sent (its answer's head, interim answers) is a byte moved on its clock (<see cref="BackendTimer.TimeConnectionReads"/>).</summary>
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
            BackendTimer.Sending is { } timer ? Timed(base.ReadAsync(buffer, cancellationToken), timer) : base.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private static async ValueTask<int> Timed(ValueTask<int> pending, BackendTimer timer)
        {
            var read = await pending.ConfigureAwait(false);
            if (read > 0)
            {
                timer.Moved();
            }
            return read;
        }

        protected override void Dispose(bool disposing)
        {
            try
            {
                base.Dispose(disposing);
            }
            finally
            {
                Interlocked.Exchange(ref _owner, null)?.GiveBack();
            }
        }
    }

    /// <summary>Every slot is taken: the connection was not opened.</summary>
    public sealed class LimitReachedException() : IOException("too many connections to the backend are open");
}
