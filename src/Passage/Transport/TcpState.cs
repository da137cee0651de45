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
    // getsockopt(IPPROTO_TCP, TCP_INFO), whose first byte is tcpi_state, and the TCP_CLOSE state, as Linux numbers them.
    private const int IpProtocolTcp = 6;
    private const int TcpInfo = 11;
    private const byte TcpClose = 7;

    /// <summary>
    /// True when <paramref name="socket"/>, which this side has not half-closed, is a TCP connection the kernel has closed:
    /// its end of stream was a failure, not the peer's FIN. False on other systems, for a socket that is not TCP, or one
    /// already disposed.
    /// </summary>
    public static bool IsClosed(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return false;
        }
        Span<byte> info = stackalloc byte[8];
        try
        {
            // The kernel copies no more of tcp_info than asked for.
            return socket.GetRawSocketOption(IpProtocolTcp, TcpInfo, info) >= 1 && info[0] == TcpClose;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            return false;
        }
    }
}
