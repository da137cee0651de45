using System.Net;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A TCP forwarder on 127.0.0.1:0 that holds every chunk for a fixed delay in both directions:
/// a relay behind it looks farther away (a longer round trip) without changing what it does.
/// </summary>
internal sealed class DelayTap : IAsyncDisposable
{
    private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly IPEndPoint _target;
    private readonly TimeSpan _delay;
    private readonly Task _acceptLoop;
    private readonly CancellationTokenSource _stop = new();

    public DelayTap(IPEndPoint target, TimeSpan delay)
    {
        _target = target;
        _delay = delay;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(512);
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    private Task AcceptLoopAsync() => Loopback.AcceptEachAsync(_listener, inbound =>
    {
        _ = ServeAsync(inbound);
    });

    private async Task ServeAsync(Socket inbound)
    {
        using (inbound)
        using (var outbound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true })
        {
            try
            {
                await outbound.ConnectAsync(_target);
                await Task.WhenAny(CopyAsync(inbound, outbound), CopyAsync(outbound, inbound));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
            }
        }
    }

    private async Task CopyAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int n;
            while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token)) > 0)
            {
                await Task.Delay(_delay, _stop.Token);
                await Loopback.SendAllAsync(to, buffer.AsMemory(0, n));
            }
            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        _stop.Cancel();
        _listener.Dispose();
        await _acceptLoop.WaitAsync(Timeouts.Default);
        _stop.Dispose();
    }
}
