using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Transport;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// The client end's status and its log lines agree: whoever has read "tunnel up" or "tunnel down" finds requests
/// already forwarded, or already answered 503. Operators (and the process tests) act on those lines.
/// </summary>
public sealed class TunnelSessionStatusTests
{
    [Fact]
    public async Task The_status_has_changed_before_tunnel_up_and_tunnel_down_are_logged()
    {
        using var directory = new TemporaryDirectory();
        var (serverKey, serverId, clientKey, clientId) = CreateKeys(directory);

        var server = await StartServerAsync(serverKey, clientId);
        var serverStopped = false;
        try
        {
            var options = ClientOptions(serverId, clientKey, server.LocalEndpoint.Port) with { ConnectInterval = TimeSpan.FromMilliseconds(200) };
            var logger = new StatusAtLogLogger();
            using var credentials = TunnelCredentials.Load(options);
            await using var session = new TunnelSession(options, credentials, logger);
            logger.Session = session;
            session.Start();

            var up = await logger.SeenAsync("TunnelSessionUp");
            Assert.Equal(TunnelPhase.Up, up);

            await server.DisposeAsync();
            serverStopped = true;
            var down = await logger.SeenAsync("TunnelSessionDown");
            Assert.Equal(TunnelPhase.Down, down);
        }
        finally
        {
            if (!serverStopped)
            {
                await server.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Stopped_stays_the_status_when_an_attempt_succeeds_as_the_session_is_disposed()
    {
        using var directory = new TemporaryDirectory();
        var (serverKey, serverId, clientKey, clientId) = CreateKeys(directory);
        await using var server = await StartServerAsync(serverKey, clientId);

        // The session's first attempt goes through a gate that connects it to the server end only once the session is
        // being disposed: the attempt then succeeds after Stopped was set and before the loop is told to stop.
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        var forwarding = ForwardWhenOpenAsync(listener, gate.Task, server.LocalEndpoint);

        var options = ClientOptions(serverId, clientKey, ((IPEndPoint)listener.LocalEndPoint!).Port);
        using var credentials = TunnelCredentials.Load(options);
        var session = new TunnelSession(options, credentials, NullLogger.Instance);
        var seen = new List<TunnelPhase>();
        session.StatusChanged += status =>
        {
            lock (seen)
            {
                seen.Add(status.Phase);
            }
            if (status.Phase == TunnelPhase.Stopped)
            {
                gate.TrySetResult();
                // Raised by DisposeAsync before it stops the loop: wait here until the attempt has ended.
                session.FirstAttempt.Wait(Timeouts.Default);
            }
        };
        session.Start();
        await session.DisposeAsync();

        Assert.Equal(TunnelPhase.Stopped, session.Status.Phase);
        lock (seen)
        {
            Assert.Equal(TunnelPhase.Stopped, seen[^1]);
        }
        listener.Dispose();
        await forwarding.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A subscriber that stops the session as it hears of Up (so Stopped is set while Up is still being raised): a later
    /// subscriber hears Up, then Stopped, never the other way round. So it does when the first subscriber also throws at
    /// every change: the session's loop and its disposal end well all the same, and the failure is logged once.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Subscribers_hear_the_changes_in_the_order_made_and_Stopped_last(bool firstThrows)
    {
        using var directory = new TemporaryDirectory();
        var (serverKey, serverId, clientKey, clientId) = CreateKeys(directory);
        await using var server = await StartServerAsync(serverKey, clientId);
        var options = ClientOptions(serverId, clientKey, server.LocalEndpoint.Port);
        using var credentials = TunnelCredentials.Load(options);
        var logger = new RecordingLogger();
        var session = new TunnelSession(options, credentials, logger);
        var disposing = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        session.StatusChanged += status =>
        {
            if (status.Phase == TunnelPhase.Up)
            {
                // On the loop's thread, before the next subscriber hears of Up: Stopped is set now.
                disposing.TrySetResult(session.DisposeAsync().AsTask());
            }
            if (firstThrows)
            {
                throw new InvalidOperationException("a subscriber's own failure");
            }
        };
        var heard = new PhasesHeard(session);
        session.Start();

        await (await disposing.Task.WaitAsync(Timeouts.Default)).WaitAsync(Timeouts.Default);
        await heard.Stopped;
        Assert.Equal(TunnelPhase.Stopped, session.Status.Phase);
        Assert.Equal([TunnelPhase.Up, TunnelPhase.Stopped], heard.Phases);
        var failures = logger.Named("TunnelStatusSubscriberFailed");
        if (firstThrows)
        {
            var logged = Assert.Single(failures);
            Assert.Equal(LogLevel.Warning, logged.Level);
            Assert.Contains("a subscriber's own failure", logged.Message, StringComparison.Ordinal);
        }
        else
        {
            Assert.Empty(failures);
        }
    }

    /// <summary>A key for each end, in <paramref name="directory"/>, and the node IDs they make.</summary>
    private static (string ServerKey, NodeId ServerId, string ClientKey, NodeId ClientId) CreateKeys(TemporaryDirectory directory)
    {
        var serverKey = Path.Combine(directory.Path, "server.key");
        var clientKey = Path.Combine(directory.Path, "client.key");
        using var server = NodeIdentity.LoadOrCreate(serverKey, null, out _);
        using var client = NodeIdentity.LoadOrCreate(clientKey, null, out _);
        return (serverKey, server.NodeId, clientKey, client.NodeId);
    }

    /// <summary>A client end with the key <paramref name="clientKey"/> that takes the server end <paramref name="serverId"/> on loopback's <paramref name="port"/>.</summary>
    private static TunnelOptions ClientOptions(NodeId serverId, string clientKey, int port) => new()
    {
        Mode = TunnelMode.Client,
        Peer = serverId,
        KeyFile = clientKey,
        ConnectAddress = new HostPort("127.0.0.1", port),
    };

    /// <summary>A server end on loopback that takes the client end <paramref name="clientId"/>; its backend is never reached.</summary>
    private static Task<TunnelServer> StartServerAsync(string serverKey, NodeId clientId) => TunnelServer.StartAsync(new TunnelOptions
    {
        Mode = TunnelMode.Server,
        Peer = clientId,
        KeyFile = serverKey,
        BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
        HttpConnectAddress = new HostPort("127.0.0.1", 9),
    }, NullLoggerFactory.Instance);

    /// <summary>Accepts connections and, once <paramref name="open"/> completes, relays each to <paramref name="target"/>.</summary>
    private static async Task ForwardWhenOpenAsync(Socket listener, Task open, IPEndPoint target)
    {
        var relays = new List<Task>();
        await Loopback.AcceptEachAsync(listener, inbound =>
        {
            relays.Add(RelayAsync(inbound));
        });
        await Task.WhenAll(relays);

        async Task RelayAsync(Socket inbound)
        {
            await using var client = new SocketConnection(inbound);
            await open;
            var outbound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await outbound.ConnectAsync(target);
            await using var upstream = new SocketConnection(outbound);
            await BytePump.RunAsync(client, upstream);
        }
    }

    /// <summary>A subscriber that notes the phases it hears, in order.</summary>
    private sealed class PhasesHeard
    {
        private readonly List<TunnelPhase> _phases = [];
        private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public PhasesHeard(TunnelSession session) => session.StatusChanged += Hear;

        /// <summary>Completes once <see cref="TunnelPhase.Stopped"/> has been heard (fails after <see cref="Timeouts.Default"/>).</summary>
        public Task Stopped => _stopped.Task.WaitAsync(Timeouts.Default);

        public IReadOnlyList<TunnelPhase> Phases
        {
            get
            {
                lock (_phases)
                {
                    return _phases.ToList();
                }
            }
        }

        private void Hear(TunnelStatus status)
        {
            lock (_phases)
            {
                _phases.Add(status.Phase);
            }
            if (status.Phase == TunnelPhase.Stopped)
            {
                _stopped.TrySetResult();
            }
        }
    }

    /// <summary>Notes, for each event logged, the session's phase at the moment the line was written.</summary>
    private sealed class StatusAtLogLogger : ILogger
    {
        private readonly Dictionary<string, TaskCompletionSource<TunnelPhase>> _seen = new();

        public TunnelSession? Session { get; set; }

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (Session is { } session && eventId.Name is { } name)
            {
                Source(name).TrySetResult(session.Status.Phase);
            }
        }

        public Task<TunnelPhase> SeenAsync(string name) => Source(name).Task.WaitAsync(Timeouts.Default);

        private TaskCompletionSource<TunnelPhase> Source(string name)
        {
            lock (_seen)
            {
                if (!_seen.TryGetValue(name, out var source))
                {
                    source = new TaskCompletionSource<TunnelPhase>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _seen[name] = source;
                }
                return source;
            }
        }
    }
}
