using System.Net;
using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A TCP listener on 127.0.0.1:0 standing in for an upstream. It records what each accepted
/// connection sends first and, when given a target, relays the connection on to it: at once, or once
/// <see cref="Release"/> is called when it is made held (a peer caught between its first bytes and the answer), from its
/// start or from a <see cref="Hold"/>.
/// </summary>
internal sealed class TcpTap : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint? _forwardTo;
    private readonly Task _acceptLoop;
    private readonly List<byte[]> _firstBytes = new();
    private volatile TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _accepted;

    public TcpTap(IPEndPoint? forwardTo = null, int backlog = 16, bool held = false)
    {
        _forwardTo = forwardTo;
        if (!held)
        {
            _released.SetResult();
        }
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(backlog);
        _acceptLoop = backlog >= 0 ? AcceptLoopAsync() : Task.CompletedTask;
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>Connections accepted so far.</summary>
    public int Accepted => Volatile.Read(ref _accepted);

    /// <summary>Lets a held tap relay its connections on: those that sent their first bytes, and those to come.</summary>
    public void Release() => _released.TrySetResult();

    /// <summary>Holds the connections that send their first bytes from now on, until the next <see cref="Release"/>.</summary>
    public void Hold()
    {
        if (_released.Task.IsCompleted)
        {
            _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>The first bytes each connection sent (up to 64 KiB, the first read).</summary>
    public IReadOnlyList<byte[]> FirstBytes { get { lock (_firstBytes) { return _firstBytes.ToArray(); } } }

    private Task AcceptLoopAsync() => Loopback.AcceptEachAsync(_listener, peer =>
    {
        Interlocked.Increment(ref _accepted);
        _ = ServeAsync(peer);
    });

    private async Task ServeAsync(Socket peer)
    {
        await using var inbound = new SocketConnection(peer);
        var buffer = new byte[64 * 1024];
        int n;
        try
        {
            n = await peer.ReceiveAsync(buffer, SocketFlags.None);
        }
        catch (SocketException)
        {
            return;
        }
        lock (_firstBytes)
        {
            _firstBytes.Add(buffer[..n]);
        }
        if (_forwardTo is null || n == 0)
        {
            return;
        }
        await _released.Task;
        var outbound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await outbound.ConnectAsync(_forwardTo);
        await using var upstream = new SocketConnection(outbound);
        await BytePump.RunAsync(inbound, upstream, clientPreamble: buffer.AsMemory(0, n));
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _acceptLoop.WaitAsync(Timeouts.Default);
    }
}
