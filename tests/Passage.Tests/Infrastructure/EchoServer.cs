using System.Net;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>A TCP echo server on 127.0.0.1:0 for any number of connections; half-closes after the peer does.</summary>
internal sealed class EchoServer : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Task _acceptLoop;
    private readonly byte[]? _greeting;
    private int _accepted;

    /// <summary>
    /// Listens on <paramref name="address"/> (default 127.0.0.1) and <paramref name="port"/> (default
    /// from the OS). With a <paramref name="greeting"/>, each connection is first sent those bytes.
    /// </summary>
    public EchoServer(IPAddress? address = null, int port = 0, byte[]? greeting = null)
    {
        _greeting = greeting;
        _listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, port));
        _listener.Listen(1024);
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    public int Accepted => Volatile.Read(ref _accepted);

    private Task AcceptLoopAsync() => Loopback.AcceptEachAsync(_listener, peer =>
    {
        Interlocked.Increment(ref _accepted);
        _ = EchoAsync(peer, _greeting);
    });

    private static async Task EchoAsync(Socket peer, byte[]? greeting)
    {
        using (peer)
        {
            var buffer = new byte[64 * 1024];
            try
            {
                if (greeting is not null)
                {
                    await Loopback.SendAllAsync(peer, greeting);
                }
                int n;
                while ((n = await peer.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                {
                    await Loopback.SendAllAsync(peer, buffer.AsMemory(0, n));
                }
                peer.Shutdown(SocketShutdown.Send);
            }
            catch (SocketException)
            {
                // The peer went away; nothing to echo.
            }
        }
    }

    /// <summary>Writes <paramref name="data"/> into a tunnel to an echo server and asserts that the same bytes come back.</summary>
    public static async Task AssertEchoesAsync(Stream tunnel, byte[] data)
    {
        await tunnel.WriteAsync(data);
        var back = new byte[data.Length];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(data, back);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _acceptLoop.WaitAsync(Timeouts.Default);
    }
}
