using System.Net;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>Real TCP connections on loopback, ports from the OS.</summary>
internal static class Loopback
{
    /// <summary>
    /// A port on 127.0.0.1 that the system had free a moment ago and nothing listens on now (TCP: a connect is
    /// refused; UDP: a datagram gets port unreachable).
    /// </summary>
    public static int ClosedPort(SocketType type = SocketType.Stream)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, type, type == SocketType.Dgram ? ProtocolType.Udp : ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    /// <summary>
    /// Accepts connections on <paramref name="listener"/> until it is closed, handing each to <paramref name="accepted"/>:
    /// the accept loop of the tests' servers and taps.
    /// </summary>
    public static async Task AcceptEachAsync(Socket listener, Action<Socket> accepted)
    {
        while (true)
        {
            Socket peer;
            try
            {
                peer = await listener.AcceptAsync();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return;
            }
            accepted(peer);
        }
    }

    /// <summary>A connected pair of sockets: (the connecting end, the accepted end).</summary>
    public static async Task<(Socket Connector, Socket Accepted)> ConnectedPairAsync(IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        using var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        listener.Listen(1);
        var connector = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await connector.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Timeouts.Default);
        var accepted = await accept.WaitAsync(Timeouts.Default);
        accepted.NoDelay = true;
        return (connector, accepted);
    }

    /// <summary>Reads until end of stream (or <paramref name="limit"/> bytes) and returns what came.</summary>
    public static async Task<byte[]> ReadToEndAsync(Socket socket, int limit = int.MaxValue, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeouts.Default);
        var received = new MemoryStream();
        var buffer = new byte[64 * 1024];
        while (received.Length < limit)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - received.Length)), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                break;
            }
            received.Write(buffer, 0, n);
        }
        return received.ToArray();
    }

    /// <summary>Sends all of <paramref name="data"/>.</summary>
    public static async Task SendAllAsync(Socket socket, ReadOnlyMemory<byte> data, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeouts.Default);
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, cts.Token);
            data = data[n..];
        }
    }

    /// <summary>True when the peer has closed or reset: a read returns 0 or fails.</summary>
    public static async Task<bool> IsClosedByPeerAsync(Socket socket, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeouts.Default);
        var buffer = new byte[1024];
        try
        {
            while (true)
            {
                if (await socket.ReceiveAsync(buffer, SocketFlags.None, cts.Token) == 0)
                {
                    return true;
                }
            }
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }
}
