using System.Net;
using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>
/// Opens TCP connections to addresses that were already resolved and checked: the dialer never
/// resolves a name, so what was checked is exactly what is reached.
/// </summary>
public static class TcpDialer
{
    /// <summary>
    /// Tries <paramref name="addresses"/> in order on <paramref name="port"/> until one connects (with more than one,
    /// the families alternating and the next started beside the last after <see cref="AttemptDelay"/>: Happy Eyeballs),
    /// within <paramref name="timeout"/> for all of them together (<see cref="Timeout.InfiniteTimeSpan"/>:
    /// none of its own, for a caller whose token already carries a deadline). Connection failures come back as
    /// values; only the caller's cancellation throws. The connection comes back ready to relay: the
    /// <see cref="SocketConnection"/> that dialed it (see <see cref="SocketConnection.ConnectAsync"/>).
    /// </summary>
    public static ValueTask<DialResult> ConnectAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        // With no timeout of its own, no timer: the caller's token carries the deadline (or there is none).
        return timeout == Timeout.InfiniteTimeSpan
            ? DialAsync(addresses, port, timeProvider ?? TimeProvider.System, cancellationToken, cancellationToken)
            : DialWithDeadlineAsync(addresses, port, timeout, timeProvider ?? TimeProvider.System, cancellationToken);
    }

    private static async ValueTask<DialResult> DialWithDeadlineAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        using var deadline = new Deadline(timeout, timeProvider, cancellationToken);
        return await DialAsync(addresses, port, timeProvider, deadline.Token, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// How long one address is given to connect before the next one is tried beside it (RFC 8305 §5 recommends
    /// 250 ms): an address that swallows the SYN costs a quarter second, not the whole connect timeout.
    /// </summary>
    public static readonly TimeSpan AttemptDelay = TimeSpan.FromMilliseconds(250);

    /// <summary>The dial itself: <paramref name="token"/> ends it (a timeout when <paramref name="cancellationToken"/>, the caller's, has not fired).</summary>
    private static async ValueTask<DialResult> DialAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeProvider timeProvider, CancellationToken token, CancellationToken cancellationToken)
    {
        if (addresses.Count > 1)
        {
            return await RaceAsync(Interleave(addresses), port, timeProvider, token, cancellationToken).ConfigureAwait(false);
        }

        var failures = new Failures();
        // By index: a foreach over the interface would box the list's enumerator.
        for (var i = 0; i < addresses.Count; i++)
        {
            var endpoint = Endpoint(addresses[i], port);
            var (connection, error) = await AttemptAsync(endpoint, token).ConfigureAwait(false);
            if (connection is not null)
            {
                return new DialResult(connection, DialError.None, SocketError.Success, endpoint);
            }

            if (error is null)
            {
                cancellationToken.ThrowIfCancellationRequested();
                return new DialResult(null, DialError.TimedOut, SocketError.TimedOut);
            }

            failures.Add(error);
        }

        return failures.Result(addresses.Count);
    }

    /// <summary>
    /// Happy Eyeballs (RFC 8305 §5): the addresses are tried one after another, each started when the one before it
    /// failed or after <see cref="AttemptDelay"/>, whichever comes first, earlier ones still running; the first to
    /// connect wins and the others are cancelled and closed.
    /// </summary>
    private static async Task<DialResult> RaceAsync(
        List<IPAddress> addresses, int port, TimeProvider timeProvider, CancellationToken token, CancellationToken cancellationToken)
    {
        using var race = CancellationTokenSource.CreateLinkedTokenSource(token);
        var running = new List<Task<(SocketConnection? Connection, SocketException? Error, IPEndPoint Endpoint)>>(addresses.Count);
        var failures = new Failures();
        int next = 0;
        Task? delay = null;
        try
        {
            while (true)
            {
                if (next < addresses.Count && (delay is null || delay.IsCompleted || running.Count == 0))
                {
                    var endpoint = Endpoint(addresses[next++], port);
                    running.Add(AttemptWithEndpointAsync(endpoint, race.Token));
                    delay = next < addresses.Count ? Task.Delay(AttemptDelay, timeProvider, race.Token) : null;
                }

                if (running.Count == 0)
                {
                    return failures.Result(addresses.Count);
                }

                Task done = delay is null ? await Task.WhenAny(running).ConfigureAwait(false)
                    : await Task.WhenAny([.. running, delay]).ConfigureAwait(false);
                if (done == delay)
                {
                    if (token.IsCancellationRequested)
                    {
                        break;
                    }

                    continue; // time for the next address
                }

                var attempt = (Task<(SocketConnection? Connection, SocketException? Error, IPEndPoint Endpoint)>)done;
                running.Remove(attempt);
                var (connection, error, reached) = await attempt.ConfigureAwait(false);
                if (connection is not null)
                {
                    return new DialResult(connection, DialError.None, SocketError.Success, reached);
                }

                if (error is null)
                {
                    break; // cancelled: the deadline or the caller
                }

                failures.Add(error);
                delay = null; // a failure starts the next address at once
            }

            cancellationToken.ThrowIfCancellationRequested();
            return new DialResult(null, DialError.TimedOut, SocketError.TimedOut);
        }
        finally
        {
            // The losers: cancelled, and closed should they connect after all.
            race.Cancel();
            foreach (var loser in running)
            {
                _ = CloseWhenDoneAsync(loser);
            }
        }
    }

    /// <summary>A loser that connects after all is reset (no FIN, no TIME_WAIT here, an empty connection there).</summary>
    private static async Task CloseWhenDoneAsync(Task<(SocketConnection? Connection, SocketException? Error, IPEndPoint Endpoint)> attempt)
    {
        var (connection, _, _) = await attempt.ConfigureAwait(false);
        connection?.Abort();
    }

    private static async Task<(SocketConnection?, SocketException?, IPEndPoint)> AttemptWithEndpointAsync(IPEndPoint endpoint, CancellationToken token)
    {
        var (connection, error) = await AttemptAsync(endpoint, token).ConfigureAwait(false);
        return (connection, error, endpoint);
    }

    /// <summary>One connect: the connection, or its failure, or neither when <paramref name="token"/> ended it.</summary>
    private static async ValueTask<(SocketConnection? Connection, SocketException? Error)> AttemptAsync(IPEndPoint endpoint, CancellationToken token)
    {
        SocketConnection? connection = null;
        try
        {
            // Inside the try: no socket for this family (IPv6 off in the kernel) or no descriptor is this address's failure.
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            if (OpenFileLimit.InHeadroom(socket.Handle))
            {
                // The last descriptors are the runtime's (OpenFileLimit.Headroom): as if socket(2) had failed with EMFILE.
                socket.Dispose();
                return (null, new SocketException((int)SocketError.TooManyOpenSockets));
            }
            connection = new SocketConnection(socket);
            await connection.ConnectAsync(endpoint, token).ConfigureAwait(false);
            return (connection, null);
        }
        catch (OperationCanceledException)
        {
            await DisposeAsync(connection).ConfigureAwait(false);
            return (null, null);
        }
        catch (SocketException e)
        {
            await DisposeAsync(connection).ConfigureAwait(false);
            return (null, e);
        }
    }

    /// <summary>
    /// Where to connect for <paramref name="address"/>: an IPv4-mapped IPv6 address (<c>::ffff:a.b.c.d</c>, RFC 4291
    /// §2.5.5.2) is its IPv4 address. An IPv6 socket here is IPv6-only, and one dialing a mapped address failed with
    /// NetworkUnreachable; the destination rules already judge such an address as its IPv4 one.
    /// </summary>
    private static IPEndPoint Endpoint(IPAddress address, int port) =>
        new(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address, port);

    private static ValueTask DisposeAsync(SocketConnection? connection) => connection?.DisposeAsync() ?? ValueTask.CompletedTask;

    /// <summary>RFC 8305 §4: the families alternate, starting with the first address's; each family in its order.</summary>
    private static List<IPAddress> Interleave(IReadOnlyList<IPAddress> addresses)
    {
        var first = addresses[0].AddressFamily;
        var same = new Queue<IPAddress>(addresses.Where(a => a.AddressFamily == first));
        var other = new Queue<IPAddress>(addresses.Where(a => a.AddressFamily != first));
        var order = new List<IPAddress>(addresses.Count);
        while (same.Count > 0 || other.Count > 0)
        {
            if (same.TryDequeue(out var a))
            {
                order.Add(a);
            }

            if (other.TryDequeue(out var b))
            {
                order.Add(b);
            }
        }

        return order;
    }

    /// <summary>
    /// The most telling failure of those seen, whatever order they came in (attempts race): a refusal says most,
    /// then a timeout, then any other error, and an unreachable address least.
    /// </summary>
    private sealed class Failures
    {
        private DialError _worst = DialError.Unreachable;
        private SocketError _error = SocketError.HostUnreachable;
        private bool _any;

        public void Add(SocketException e)
        {
            var kind = e.SocketErrorCode switch
            {
                SocketError.ConnectionRefused => DialError.Refused,
                SocketError.TimedOut => DialError.TimedOut,
                SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown => DialError.Unreachable,
                _ => DialError.Other,
            };
            if (!_any || Rank(kind) < Rank(_worst) || (Rank(kind) == Rank(_worst) && e.SocketErrorCode < _error))
            {
                _worst = kind;
                _error = e.SocketErrorCode;
                _any = true;
            }
        }

        public DialResult Result(int addresses) => new(null, addresses == 0 ? DialError.Unreachable : _worst, _error);

        private static int Rank(DialError kind) => kind switch
        {
            DialError.Refused => 0,
            DialError.TimedOut => 1,
            DialError.Other => 2,
            _ => 3,
        };
    }
}
