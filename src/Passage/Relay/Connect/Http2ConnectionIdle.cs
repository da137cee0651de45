using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Passage.Relay.Connect;

/// <summary>
/// The idle timeout of one HTTP/2 connection handed to Kestrel: carrying no tunnel for the relay's idle timeout, it is
/// told to go away (GOAWAY, NO_ERROR, as at the relay's stop) and Kestrel closes it once its last stream has ended.
/// Set on the connection's features, where <see cref="Http2ConnectHandler"/> finds it for each stream.
/// </summary>
/// <remarks>
/// Kestrel's own keep-alive timeout does not do this: every PING the client sends starts it again, and so does the
/// client's answer to the keep-alive PING that Kestrel itself sends after 30 s of silence. Any client that answers
/// pings, as RFC 9113 §6.7 says it must, held a connection (a socket, a front-door connection slot) without a tunnel
/// for as long as it liked: measured, one with no stream still open after 200 s. Only tunnels count as use, not
/// requests: a refused request or a ping of the relay is cheap to send every few minutes; a tunnel takes a slot
/// that the tunnel limits bound.
/// </remarks>
internal sealed class Http2ConnectionIdle : IDisposable
{
    private readonly ConnectionContext _connection;
    private readonly TimeSpan _timeout;
    private readonly ITimer? _timer;
    private readonly object _gate = new();
    private int _tunnels;
    private bool _expired;

    /// <summary>Starts the clock for <paramref name="connection"/>; <see cref="Timeout.InfiniteTimeSpan"/> never closes it.</summary>
    public Http2ConnectionIdle(ConnectionContext connection, TimeSpan timeout, TimeProvider time)
    {
        _connection = connection;
        _timeout = timeout;
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            _timer = time.CreateTimer(static state => ((Http2ConnectionIdle)state!).Expire(), this, timeout, Timeout.InfiniteTimeSpan);
        }
    }

    /// <summary>
    /// A tunnel request is served on the connection (its dial, then its tunnel): the clock stops until the result is
    /// disposed (once), at the request's or the tunnel's end. Null when the clock has run out already: the connection has
    /// been told to go away for carrying no tunnel, and none may start on it. The clock running out and a request's start
    /// exclude each other: whichever comes first holds.
    /// </summary>
    public IDisposable? TryStartTunnel()
    {
        lock (_gate)
        {
            if (_expired)
            {
                return null;
            }
            if (_tunnels++ == 0)
            {
                _timer?.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            }
        }
        return new Tunnel(this);
    }

    /// <summary>Whether the clock ran out with no tunnel open, and the connection was told to go away.</summary>
    public bool Expired
    {
        get
        {
            lock (_gate)
            {
                return _expired;
            }
        }
    }

    private void TunnelEnded()
    {
        lock (_gate)
        {
            if (--_tunnels == 0)
            {
                _timer?.Change(_timeout, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void Expire()
    {
        lock (_gate)
        {
            // Decided under the lock a start takes it under: a tunnel that starts from here on finds the connection
            // expired and does not start, and one that started before has stopped the clock. (Decided outside it, a
            // tunnel could start between the count and the decision, and run on a connection counted idle.)
            if (_tunnels > 0 || _expired)
            {
                return;
            }
            _expired = true;
        }
        // Kestrel wraps every connection it takes with this feature; without it (not yet taken), there is nothing to drain.
        if (_connection.Features.Get<IConnectionLifetimeNotificationFeature>() is { } lifetime)
        {
            lifetime.RequestClose();
        }
        else
        {
            _connection.Abort(new ConnectionAbortedException("idle"));
        }
    }

    /// <summary>Stops the clock for good (the connection has closed).</summary>
    public void Dispose() => _timer?.Dispose();

    private sealed class Tunnel(Http2ConnectionIdle owner) : IDisposable
    {
        private int _ended;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _ended, 1) == 0)
            {
                owner.TunnelEnded();
            }
        }
    }
}
