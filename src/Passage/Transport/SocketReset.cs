using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>Closing a socket with a reset (linger 0), so the peer learns at once that the relay gave up.</summary>
internal static class SocketReset
{
    /// <summary>Sets linger 0 where the socket still allows it, then closes it. Never throws.</summary>
    public static void Close(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
            // Already closed or broken: closing it is all that is left.
        }
        socket.Dispose();
    }
}
