using System.Net.Sockets;
using System.Text;

namespace Passage.Tunnel;

/// <summary>
/// Socket options of the tunnel's TCP connection: TCP_NODELAY, buffer sizes and the congestion control
/// algorithm. The server sets them on its listening socket (Linux copies them to accepted sockets), the
/// client on the socket it connects.
/// </summary>
internal static class TcpTuning
{
    // linux/tcp.h: TCP_CONGESTION takes the algorithm's name.
    private const int SolTcp = 6;
    private const int TcpCongestion = 13;

    private const string AvailablePath = "/proc/sys/net/ipv4/tcp_available_congestion_control";
    private const string AllowedPath = "/proc/sys/net/ipv4/tcp_allowed_congestion_control";

    /// <summary>Null when <paramref name="algorithm"/> can be set by this process; otherwise why not.</summary>
    public static string? CheckCongestionAlgorithm(string algorithm)
    {
        if (!OperatingSystem.IsLinux() || !File.Exists(AvailablePath))
        {
            return "choosing the TCP congestion algorithm needs Linux";
        }
        var available = ReadList(AvailablePath);
        if (!available.Contains(algorithm, StringComparer.Ordinal))
        {
            return $"'{algorithm}' is not available in this kernel (available: {string.Join(", ", available)}; `modprobe tcp_{algorithm}` may add it)";
        }
        // Without CAP_NET_ADMIN only the allowed ones may be chosen.
        var allowed = File.Exists(AllowedPath) ? ReadList(AllowedPath) : available;
        if (!Environment.IsPrivilegedProcess && !allowed.Contains(algorithm, StringComparer.Ordinal))
        {
            return $"'{algorithm}' is available but not allowed for unprivileged processes (allowed: {string.Join(", ", allowed)}; see net.ipv4.tcp_allowed_congestion_control)";
        }
        return null;
    }

    /// <summary>Applies the options to <paramref name="socket"/>.</summary>
    /// <exception cref="SocketException">The kernel refused an option.</exception>
    public static void Apply(Socket socket, TunnelOptions options)
    {
        socket.NoDelay = options.TcpNoDelay;
        if (options.SocketReceiveBufferSize is { } receive)
        {
            socket.ReceiveBufferSize = receive;
        }
        if (options.SocketSendBufferSize is { } send)
        {
            socket.SendBufferSize = send;
        }
        if (options.CongestionAlgorithm is { } algorithm)
        {
            socket.SetRawSocketOption(SolTcp, TcpCongestion, Encoding.ASCII.GetBytes(algorithm));
        }
    }

    /// <summary>The congestion algorithm a socket uses, or null where that cannot be read.</summary>
    public static string? CongestionAlgorithm(Socket socket)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        var buffer = new byte[16];
        try
        {
            var length = socket.GetRawSocketOption(SolTcp, TcpCongestion, buffer);
            return Encoding.ASCII.GetString(buffer, 0, length).TrimEnd('\0');
        }
        catch (SocketException)
        {
            return null;
        }
    }

    private static string[] ReadList(string path) =>
        File.ReadAllText(path).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
}
