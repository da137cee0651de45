using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>What Linux says of a TCP connection's state, for telling a peer's reset from its FIN after the fact.</summary>
/// <remarks>
/// Linux reports a connection's pending error (a reset, a timeout) to whichever call on the socket comes next, once: when a
/// write meets a reset, the next read finds the connection gone and returns 0 as if the peer had sent its FIN. The state
/// tells the two apart: after a FIN the connection waits for this side's close (CLOSE_WAIT); after a reset it is closed.
/// After this side's own half-close, a FIN closes it too (its TIME_WAIT is another socket), so a caller that has
/// half-closed cannot use it.
/// </remarks>
internal static class TcpState
{
    // getsockopt(IPPROTO_TCP, TCP_INFO), whose first byte is tcpi_state, and getsockopt(SOL_SOCKET, SO_ERROR), as Linux
    // numbers them.
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const int SolSocket = 1;
    private const int SoError = 4;

    /// <summary>TCP_CLOSE: the connection is over, by a reset, a timeout, or both FINs after this side's own.</summary>
    public const int Close = 7;

    /// <summary>TCP_CLOSE_WAIT: the peer sent its FIN; this side has not ended its own.</summary>
    public const int CloseWait = 8;

    /// <summary>The connection's state as Linux numbers it (tcpi_state); null on other systems, for a socket that is not TCP, or one disposed.</summary>
    public static int? Of(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        Span<byte> info = stackalloc byte[8];
        try
        {
            // The kernel copies no more of tcp_info than asked for.
            return socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) >= 1 ? info[0] : null;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>
    /// True when the end of stream a read of <paramref name="socket"/> (which this side has not half-closed) just returned
    /// was a failure of the connection, not the peer's FIN: the kernel has closed it, and not by a reset that came after
    /// the FIN. False on other systems, for a socket that is not TCP, or one already disposed.
    /// </summary>
    /// <remarks>
    /// A peer that sent its bytes and its FIN, and then reset (it had closed, and refused what this side sent it since), is
    /// closed too; but what it sent was whole, and so is the end the read found: Linux keeps a reset after the FIN as
    /// EPIPE, not ECONNRESET. That error is taken here if nothing took it yet, which changes nothing for what follows: a
    /// write to the connection fails as before, and a read finds the end again. A write that took it failed, which ends
    /// the run anyway.
    /// </remarks>
    public static bool EndWasFailure(Socket socket)
    {
        if (Of(socket) != Close)
        {
            return false;
        }
        Span<byte> error = stackalloc byte[sizeof(int)];
        try
        {
            return !(socket.GetRawSocketOption(SolSocket, SoError, error) == sizeof(int) && BitConverter.ToInt32(error) == LinuxSplice.EPIPE);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }
}
