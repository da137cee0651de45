using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Tests.Infrastructure;
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
        var serverKey = Path.Combine(directory.Path, "server.key");
        var clientKey = Path.Combine(directory.Path, "client.key");
        NodeId serverId, clientId;
        using (var identity = NodeIdentity.LoadOrCreate(serverKey, null, out _))
        {
            serverId = identity.NodeId;
        }
        using (var identity = NodeIdentity.LoadOrCreate(clientKey, null, out _))
        {
            clientId = identity.NodeId;
        }

        var server = await TunnelServer.StartAsync(new TunnelOptions
        {
            Mode = TunnelMode.Server,
            Peer = clientId,
            KeyFile = serverKey,
            BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
            HttpConnectAddress = new HostPort("127.0.0.1", 9),
        }, NullLoggerFactory.Instance);
        var serverStopped = false;
        try
        {
            var options = new TunnelOptions
            {
                Mode = TunnelMode.Client,
                Peer = serverId,
                KeyFile = clientKey,
                ConnectAddress = new HostPort("127.0.0.1", server.LocalEndpoint.Port),
                ConnectInterval = TimeSpan.FromMilliseconds(200),
            };
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
