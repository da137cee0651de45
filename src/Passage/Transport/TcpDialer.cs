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
    /// Tries <paramref name="addresses"/> in order on <paramref name="port"/> until one connects,
    /// within <paramref name="timeout"/> for all of them together (<see cref="Timeout.InfiniteTimeSpan"/>:
    /// none of its own, for a caller whose token already carries a deadline). Connection failures come back as
    /// values; only the caller's cancellation throws. The connection comes back ready to relay: the
    /// <see cref="SocketConnection"/> that dialed it (see <see cref="SocketConnection.ConnectAsync"/>).
    /// </summary>
    public static Task<DialResult> ConnectAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        // With no timeout of its own, no timer: the caller's token carries the deadline (or there is none).
        return timeout == Timeout.InfiniteTimeSpan
            ? DialAsync(addresses, port, cancellationToken, cancellationToken)
            : DialWithDeadlineAsync(addresses, port, timeout, timeProvider ?? TimeProvider.System, cancellationToken);
    }

    private static async Task<DialResult> DialWithDeadlineAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout, TimeProvider timeProvider, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource(timeout, timeProvider);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        return await DialAsync(addresses, port, linked.Token, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The dial itself: <paramref name="token"/> ends it (a timeout when <paramref name="cancellationToken"/>, the caller's, has not fired).</summary>
    private static async Task<DialResult> DialAsync(IReadOnlyList<IPAddress> addresses, int port, CancellationToken token, CancellationToken cancellationToken)
    {
        var worst = DialError.Unreachable;
        var lastError = SocketError.HostUnreachable;
        foreach (var address in addresses)
        {
            var connection = new SocketConnection(new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true });
            try
            {
                var endpoint = new IPEndPoint(address, port);
                await connection.ConnectAsync(endpoint, token).ConfigureAwait(false);
                return new DialResult(connection, DialError.None, SocketError.Success, endpoint);
            }
            catch (OperationCanceledException)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                cancellationToken.ThrowIfCancellationRequested();
                return new DialResult(null, DialError.TimedOut, SocketError.TimedOut);
            }
            catch (SocketException e)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                lastError = e.SocketErrorCode;
                var kind = e.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => DialError.Refused,
                    SocketError.TimedOut => DialError.TimedOut,
                    SocketError.HostUnreachable or SocketError.NetworkUnreachable or SocketError.HostDown or SocketError.NetworkDown => DialError.Unreachable,
                    _ => DialError.Other,
                };
                // Report the most telling failure: a refusal says more than an unreachable address.
                if (kind < worst || worst == DialError.Unreachable)
                {
                    worst = kind;
                }
            }
        }
        return new DialResult(null, addresses.Count == 0 ? DialError.Unreachable : worst, lastError);
    }
}
