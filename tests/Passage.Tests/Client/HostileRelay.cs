using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client;

/// <summary>
/// A relay that the client's pin accepts (TLS with its own identity, ALPN h2) and that then speaks hand-written HTTP/2
/// frames, as a broken or hostile relay would. On each connection it reads the client's preface, sends
/// <c>start</c> (by default a SETTINGS frame that allows extended CONNECT), and serves the client's frames: its
/// SETTINGS and PINGs acknowledged, a request that ends with its headers (the client's probe) answered 204, and each
/// tunnel request (headers without END_STREAM) handed to the test's <c>onTunnel</c>, in the order the requests came
/// (each script runs on the serving loop up to its first wait). Everything else the client sends is kept in
/// <see cref="HostileConnection.Received"/>.
/// </summary>
/// <remarks>
/// Disposing it waits until every connection's serving loop and every script it started have ended; one that has not
/// within <see cref="Timeouts.Default"/> is named in the <see cref="TimeoutException"/> (a script that waits for what
/// the test was to give and did not: the test failed before, and this exception stands in for its failure).
/// </remarks>
internal sealed class HostileRelay : IAsyncDisposable
{
    private readonly NodeIdentity _identity = NodeIdentity.Create();
    private readonly Socket _listener = new(SocketType.Stream, ProtocolType.Tcp);
    private readonly Func<HostileConnection, int, Task> _onTunnel;
    private readonly byte[] _start;
    private readonly TimeSpan _probeDelay;
    private readonly ConcurrentQueue<HostileConnection> _connections = new();
    private readonly Task _accepting;

    private HostileRelay(Func<HostileConnection, int, Task> onTunnel, byte[] start, TimeSpan probeDelay)
    {
        _onTunnel = onTunnel;
        _start = start;
        _probeDelay = probeDelay;
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _listener.Listen(64);
        _accepting = AcceptAsync();
    }

    /// <summary>The SETTINGS a relay sends: extended CONNECT allowed (RFC 8441 §3), and <paramref name="more"/>.</summary>
    public static byte[] Settings(params (ushort Id, uint Value)[] more) =>
        RawHttp2.SettingsFrame([(RawHttp2.EnableConnectProtocol, 1), .. more]);

    /// <summary>
    /// Starts a relay that answers every tunnel request with <paramref name="onTunnel"/>, after sending <paramref name="start"/>
    /// (default <see cref="Settings"/>), and the client's probes after <paramref name="probeDelay"/> (none by default): a
    /// relay the client measures as far, so that another comes first.
    /// </summary>
    public static HostileRelay Start(Func<HostileConnection, int, Task> onTunnel, byte[]? start = null, TimeSpan probeDelay = default) =>
        new(onTunnel, start ?? Settings(), probeDelay);

    public PeerAddress Address => new(_identity.NodeId, "127.0.0.1", ((IPEndPoint)_listener.LocalEndPoint!).Port);

    /// <summary>The connections accepted so far, first first.</summary>
    public IReadOnlyList<HostileConnection> Connections => _connections.ToArray();

    /// <summary>The tunnel requests seen so far, on every connection.</summary>
    public int Tunnels => _connections.Sum(c => c.Tunnels);

    /// <summary>The client's probes seen so far (requests that end with their headers), on every connection.</summary>
    public int Probes => _connections.Sum(c => c.Probes);

    private Task AcceptAsync() => Loopback.AcceptEachAsync(_listener, accepted =>
    {
        var connection = new HostileConnection(accepted);
        connection.Serve(_identity, _start, _onTunnel, _probeDelay);
        _connections.Enqueue(connection);
    });

    public async ValueTask DisposeAsync()
    {
        _listener.Dispose();
        await _accepting;
        var connections = _connections.ToArray();
        foreach (var connection in connections)
        {
            connection.Dispose();
        }
        var ended = Task.WhenAll(connections.Select(c => c.EndedAsync()));
        try
        {
            await ended.WaitAsync(Timeouts.Default);
        }
        catch (TimeoutException e)
        {
            var stuck = connections.Select((c, i) => (c.Unfinished(), i)).Where(c => c.Item1 is not null).Select(c => $"connection {c.i + 1}: {c.Item1}");
            throw new TimeoutException($"{Timeouts.Default.TotalSeconds} s after the hostile relay was disposed, not ended: {string.Join("; ", stuck)}", e);
        }
        _identity.Dispose();
    }
}

/// <summary>One connection of a <see cref="HostileRelay"/>.</summary>
internal sealed class HostileConnection(Socket socket) : IDisposable
{
    private readonly SemaphoreSlim _writing = new(1, 1);
    private readonly TaskCompletionSource _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<(string What, Task Task)> _scripts = [];
    private readonly ConcurrentDictionary<int, bool> _echoed = new();
    private RawHttp2? _h2;
    private Task _serving = Task.CompletedTask;
    private volatile string _doing = "not started";
    private volatile Task _reads = Task.CompletedTask;

    /// <summary>Frames the client sent that the relay does not serve itself (DATA, RST_STREAM, GOAWAY, WINDOW_UPDATE...).</summary>
    public ConcurrentQueue<RawFrame> Received { get; } = new();

    /// <summary>Completes when the client has closed the connection (or it broke).</summary>
    public Task Closed => _closed.Task;

    /// <summary>Tunnel requests seen on this connection.</summary>
    public int Tunnels { get; private set; }

    /// <summary>The client's probes seen so far on this connection.</summary>
    public int Probes => Volatile.Read(ref _probes);

    private int _probes;

    /// <summary>A HEADERS frame (END_HEADERS) on <paramref name="stream"/> with <c>:status</c> and <paramref name="fields"/>.</summary>
    public static byte[] Answer(int stream, int status, bool endStream = false, params (string Name, string Value)[] fields) =>
        RawHttp2.Frame(RawHttp2.Headers, (byte)(RawHttp2.EndHeaders | (endStream ? RawHttp2.EndStream : 0)), stream,
            RawHttp2.HeaderBlock([(":status", status.ToString(System.Globalization.CultureInfo.InvariantCulture)), .. fields]));

    /// <summary>A WINDOW_UPDATE frame granting <paramref name="increment"/> bytes on <paramref name="stream"/> (0: the connection).</summary>
    public static byte[] WindowUpdate(int stream, int increment)
    {
        var payload = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(payload, increment);
        return RawHttp2.Frame(RawHttp2.WindowUpdate, 0, stream, payload);
    }

    /// <summary>
    /// From now on the DATA the client sends on <paramref name="stream"/> comes back to it (and its window is granted again).
    /// Call it before the answer that lets the client send, or its first DATA may be read before and kept in <see cref="Received"/>.
    /// </summary>
    public void Echo(int stream) => _echoed[stream] = true;

    /// <summary>Sends <paramref name="bytes"/> to the client, whole (writes from the serving loop and the test do not interleave).</summary>
    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        await _writing.WaitAsync();
        try
        {
            await _h2!.SendAsync(bytes);
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>Bytes the client sent that the relay has not read yet (in its socket's receive queue).</summary>
    public int Unread => socket.Available;

    /// <summary>
    /// The relay reads nothing more of this connection until <paramref name="until"/> completes (the client's writes back
    /// up once the socket's buffers are full). Called from a script before its first wait, it holds the next read.
    /// </summary>
    public void HoldReads(Task until) => _reads = until;

    /// <summary>
    /// Ends the TCP connection's sending side (a FIN, no TLS close_notify), as a relay that dies would; what was sent
    /// before still arrives, and the client's frames are still read.
    /// </summary>
    public void Shutdown() => socket.Shutdown(SocketShutdown.Send);

    /// <summary>Starts serving the connection (see <see cref="HostileRelay"/>).</summary>
    internal void Serve(NodeIdentity identity, byte[] start, Func<HostileConnection, int, Task> onTunnel, TimeSpan probeDelay) =>
        _serving = Task.Run(() => ServeAsync(identity, start, onTunnel, probeDelay));

    /// <summary>
    /// Completes when the serving loop and every script it started have ended; faults with a script's failure other than
    /// the client's going (an I/O error, the connection disposed).
    /// </summary>
    internal async Task EndedAsync()
    {
        await _serving;
        Task[] scripts;
        lock (_scripts)
        {
            scripts = [.. _scripts.Select(s => s.Task)];
        }
        try
        {
            await Task.WhenAll(scripts);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // A script that was still writing when the client went.
        }
    }

    /// <summary>What of this connection has not ended (its serving loop and what it was doing, its scripts), or null.</summary>
    internal string? Unfinished()
    {
        string[] scripts;
        lock (_scripts)
        {
            scripts = [.. _scripts.Where(s => !s.Task.IsCompleted).Select(s => s.What)];
        }
        string[] parts = _serving.IsCompleted ? scripts : [$"serving loop ({_doing})", .. scripts];
        return parts.Length == 0 ? null : $"{string.Join(", ", parts)} (tunnel requests {Tunnels}, connection closed {Closed.IsCompleted})";
    }

    private async Task ServeAsync(NodeIdentity identity, byte[] start, Func<HostileConnection, int, Task> onTunnel, TimeSpan probeDelay)
    {
        try
        {
            var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
            _h2 = RawHttp2.Over(tls);
            _doing = "TLS handshake";
            await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
            {
                ServerCertificate = identity.Certificate,
                ApplicationProtocols = [SslApplicationProtocol.Http2],
            });
            var preface = new byte[24];
            _doing = "reading the preface";
            await tls.ReadExactlyAsync(preface);
            _doing = "sending the start";
            await SendAsync(start);
            _doing = "reading a frame";
            while (await ReadFrameAsync() is { } frame)
            {
                _doing = $"serving frame type {frame.Type} on stream {frame.Stream}";
                switch (frame.Type)
                {
                    case RawHttp2.Settings when frame.Flags == 0:
                        await SendAsync(RawHttp2.Frame(RawHttp2.Settings, RawHttp2.Ack, 0, []));
                        break;
                    case RawHttp2.Ping when frame.Flags == 0:
                        await SendAsync(RawHttp2.Frame(RawHttp2.Ping, RawHttp2.Ack, 0, frame.Payload));
                        break;
                    case RawHttp2.Headers when (frame.Flags & RawHttp2.EndStream) != 0 && probeDelay > TimeSpan.Zero:
                        Interlocked.Increment(ref _probes);
                        var probe = frame.Stream;
                        Started($"probe answer on stream {probe}", async () =>
                        {
                            await Task.Delay(probeDelay);
                            await SendAsync(Answer(probe, 204, endStream: true));
                        });
                        break;
                    case RawHttp2.Headers when (frame.Flags & RawHttp2.EndStream) != 0:
                        Interlocked.Increment(ref _probes);
                        await SendAsync(Answer(frame.Stream, 204, endStream: true));
                        break;
                    case RawHttp2.Headers:
                        Tunnels++;
                        var stream = frame.Stream;
                        Started($"script of tunnel request {Tunnels} (stream {stream})", () => onTunnel(this, stream));
                        break;
                    case RawHttp2.Data when _echoed.ContainsKey(frame.Stream) && frame.Payload.Length > 0:
                        await SendAsync((byte[])[.. RawHttp2.Frame(RawHttp2.Data, 0, frame.Stream, frame.Payload),
                            .. WindowUpdate(0, frame.Payload.Length), .. WindowUpdate(frame.Stream, frame.Payload.Length)]);
                        break;
                    default:
                        Received.Enqueue(frame);
                        break;
                }
                _doing = "reading a frame";
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
        {
        }
        finally
        {
            _closed.TrySetResult();
        }
    }

    /// <summary>The client's next frame, once reads are no longer held (<see cref="HoldReads"/>); null at its end.</summary>
    private async Task<RawFrame?> ReadFrameAsync()
    {
        if (!_reads.IsCompleted)
        {
            _doing = "reads held";
            await _reads;
            _doing = "reading a frame";
        }
        return await _h2!.ReadFrameAsync(Timeout.InfiniteTimeSpan);
    }

    /// <summary>
    /// Runs <paramref name="script"/> here, up to its first wait, so that scripts start in the order their requests came
    /// (a script queued to the thread pool may start after a later one: a test's "first request" was then its second).
    /// </summary>
    private void Started(string what, Func<Task> script)
    {
        Task task;
        try
        {
            task = script();
        }
        catch (Exception e)
        {
            task = Task.FromException(e);
        }
        lock (_scripts)
        {
            _scripts.Add((what, task));
        }
    }

    public void Dispose()
    {
        _h2?.Dispose();
        socket.Dispose();
    }
}
