using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Privacy;

/// <summary>
/// A destination that keeps, for each connection, the address it came from and every byte it sent. Alone it answers
/// the first HTTP request head on a connection with 200 and the address it saw, and closes; with a
/// <c>forwardTo</c> it passes each connection on to that server (a TLS origin, say) and keeps what went that way.
/// </summary>
internal sealed class RecordingOrigin : IAsyncDisposable
{
    private readonly Socket _listener;
    private readonly IPEndPoint? _forwardTo;
    private readonly CancellationTokenSource _stopping = new();
    private readonly List<Connection> _connections = new();
    private readonly Task _acceptLoop;

    /// <summary>Listens on <paramref name="address"/> (default 127.0.0.1), a port from the OS.</summary>
    public RecordingOrigin(IPAddress? address = null, IPEndPoint? forwardTo = null)
    {
        _forwardTo = forwardTo;
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.Bind(new IPEndPoint(address ?? IPAddress.Loopback, 0));
        _listener.Listen(64);
        _acceptLoop = AcceptLoopAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

    /// <summary>The connections that have ended (their peer closed its side, or broke off), in the order they came.</summary>
    public IReadOnlyList<Connection> Ended { get { lock (_connections) { return _connections.Where(c => c.HasEnded).ToArray(); } } }

    /// <summary>Waits until <paramref name="count"/> connections have ended; returns them.</summary>
    public async Task<IReadOnlyList<Connection>> WaitForEndedAsync(int count)
    {
        await Timeouts.WaitUntilAsync(() => Ended.Count >= count, () => $"{Ended.Count} of {count} connections ended");
        return Ended;
    }

    private Task AcceptLoopAsync() => Loopback.AcceptEachAsync(_listener, peer =>
    {
        var connection = new Connection((IPEndPoint)peer.RemoteEndPoint!);
        lock (_connections)
        {
            _connections.Add(connection);
        }
        _ = ServeAsync(peer, connection);
    });

    private async Task ServeAsync(Socket peer, Connection connection)
    {
        using var _ = peer;
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(Timeouts.Default);
        try
        {
            if (_forwardTo is null)
            {
                await AnswerAsync(peer, connection, timeout.Token);
            }
            else
            {
                using var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await upstream.ConnectAsync(_forwardTo, timeout.Token);
                await Task.WhenAll(CopyAsync(peer, upstream, connection, timeout.Token), CopyAsync(upstream, peer, null, timeout.Token));
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException)
        {
            // The peer broke off, or the test is over: what came is what there is.
        }
        finally
        {
            connection.End();
        }
    }

    private static async Task AnswerAsync(Socket peer, Connection connection, CancellationToken cancellation)
    {
        var buffer = new byte[16 * 1024];
        var answered = false;
        int n;
        while ((n = await peer.ReceiveAsync(buffer, SocketFlags.None, cancellation)) > 0)
        {
            connection.Add(buffer.AsSpan(0, n));
            if (!answered && Encoding.Latin1.GetString(connection.Received).Contains("\r\n\r\n", StringComparison.Ordinal))
            {
                answered = true;
                var body = $"seen from {connection.Peer.Address}\n";
                await Loopback.SendAllAsync(peer, Encoding.ASCII.GetBytes(
                    $"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n{body}"));
                peer.Shutdown(SocketShutdown.Send);
            }
        }
    }

    private static async Task CopyAsync(Socket from, Socket to, Connection? record, CancellationToken cancellation)
    {
        var buffer = new byte[16 * 1024];
        int n;
        while ((n = await from.ReceiveAsync(buffer, SocketFlags.None, cancellation)) > 0)
        {
            record?.Add(buffer.AsSpan(0, n));
            await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, cancellation);
        }
        to.Shutdown(SocketShutdown.Send);
    }

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _stopping.CancelAsync();
        await _acceptLoop.WaitAsync(Timeouts.Default);
        _stopping.Dispose();
    }

    /// <summary>One connection to the destination: where it came from, and what it sent.</summary>
    internal sealed class Connection(IPEndPoint peer)
    {
        private readonly MemoryStream _received = new();
        private volatile bool _ended;

        public IPEndPoint Peer { get; } = peer;

        public bool HasEnded => _ended;

        public byte[] Received { get { lock (_received) { return _received.ToArray(); } } }

        public void Add(ReadOnlySpan<byte> bytes)
        {
            lock (_received)
            {
                _received.Write(bytes);
            }
        }

        public void End() => _ended = true;
    }
}
