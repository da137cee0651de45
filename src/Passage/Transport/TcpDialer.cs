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
    /// within <paramref name="timeout"/> for all of them together. Connection failures come back as
    /// values; only the caller's cancellation throws. On Linux the socket comes back in non-blocking mode, as a
    /// <see cref="SocketConnection"/> uses it (see <see cref="SocketConnection.ConnectAsync"/>).
    /// </summary>
    public static async Task<DialResult> ConnectAsync(
        IReadOnlyList<IPAddress> addresses, int port, TimeSpan timeout, TimeProvider? timeProvider = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        using var deadline = new CancellationTokenSource(timeout, timeProvider ?? TimeProvider.System);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, cancellationToken);
        var worst = DialError.Unreachable;
        var lastError = SocketError.HostUnreachable;
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                var endpoint = new IPEndPoint(address, port);
                await SocketConnection.ConnectAsync(socket, endpoint, linked.Token).ConfigureAwait(false);
                return new DialResult(socket, DialError.None, SocketError.Success, endpoint);
            }
            catch (OperationCanceledException)
            {
                socket.Dispose();
                cancellationToken.ThrowIfCancellationRequested();
                return new DialResult(null, DialError.TimedOut, SocketError.TimedOut);
            }
            catch (SocketException e)
            {
                socket.Dispose();
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
