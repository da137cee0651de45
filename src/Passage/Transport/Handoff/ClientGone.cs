using System.Net.Sockets;

namespace Passage.Transport.Handoff;

/// <summary>Which failures of a handed-off connection's stream only say that the client has gone.</summary>
internal static class ClientGone
{
    /// <summary>
    /// True when the peer reset the connection or stopped reading for good (broken pipe), or the connection was
    /// aborted here and its stream closed. Passage's sockets fail with a bare <see cref="SocketException"/>, TLS wraps
    /// it in an <see cref="IOException"/>.
    /// </summary>
    public static bool Is(Exception e) => e switch
    {
        ObjectDisposedException => true,
        SocketException socket => socket.SocketErrorCode is SocketError.ConnectionReset or SocketError.Shutdown
            or SocketError.ConnectionAborted or SocketError.OperationAborted,
        IOException { InnerException: { } cause } => Is(cause),
        _ => false,
    };
}
