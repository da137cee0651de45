using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A server end in this process, to a backend, with settings a process cannot be given (the backend connections' cap),
/// and a client end's session to it; with <c>clientEnd</c>, also a whole client end, taking HTTP/1.1 on
/// <see cref="HttpPort"/>. <c>idleTimeout</c> is <c>system.idleTimeout</c> at both ends, unless <c>serverIdleTimeout</c>
/// sets the server end's. <c>viaPseudonym</c> names both ends in Via, where a test needs to know the name or has them collide;
/// <c>clientLoggerFactory</c> and <c>serverLoggerFactory</c> take the client end's and the server end's log, Kestrel's included.
/// </summary>
internal sealed class InProcessEnds : IAsyncDisposable
{
    private readonly TemporaryDirectory _directory;
    private readonly TunnelServer _server;
    private readonly TunnelCredentials _credentials;
    private readonly TunnelSession _session;
    private readonly TunnelClient? _client;

    private InProcessEnds(TemporaryDirectory directory, TunnelServer server, TunnelCredentials credentials, TunnelSession session, TunnelClient? client)
    {
        _directory = directory;
        _server = server;
        _credentials = credentials;
        _session = session;
        _client = client;
    }

    public string Origin => _session.Origin;

    /// <summary>The client end's HTTP/1.1 port (started with <c>clientEnd</c> only).</summary>
    public int HttpPort => (_client ?? throw new InvalidOperationException("started without a client end")).LocalEndpoint.Port;

    public static async Task<InProcessEnds> StartAsync(int backendPort, int? backendConnectionLimit = null, bool clientEnd = false, TimeSpan? idleTimeout = null, TimeSpan? serverIdleTimeout = null, string? viaPseudonym = null, TimeSpan? backendTimeout = null, Microsoft.Extensions.Logging.ILoggerFactory? clientLoggerFactory = null, Microsoft.Extensions.Logging.ILoggerFactory? serverLoggerFactory = null)
    {
        var directory = new TemporaryDirectory();
        var serverKey = Path.Combine(directory.Path, "server.key");
        var clientKey = Path.Combine(directory.Path, "client.key");
        using var serverIdentity = NodeIdentity.LoadOrCreate(serverKey, null, out _);
        using var clientIdentity = NodeIdentity.LoadOrCreate(clientKey, null, out _);
        var server = await TunnelServer.StartAsync(new TunnelOptions
        {
            Mode = TunnelMode.Server,
            Peer = clientIdentity.NodeId,
            KeyFile = serverKey,
            BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
            HttpConnectAddress = new HostPort("127.0.0.1", backendPort),
            BackendConnectionLimit = backendConnectionLimit,
            IdleTimeout = serverIdleTimeout ?? idleTimeout ?? new TunnelOptions().IdleTimeout,
            BackendTimeout = backendTimeout ?? new TunnelOptions().BackendTimeout,
        }, serverLoggerFactory ?? NullLoggerFactory.Instance, viaPseudonym);
        var options = new TunnelOptions
        {
            Mode = TunnelMode.Client,
            Peer = serverIdentity.NodeId,
            KeyFile = clientKey,
            ConnectAddress = new HostPort("127.0.0.1", server.LocalEndpoint.Port),
            HttpBindAddress = new IPEndPoint(IPAddress.Loopback, 0),
            IdleTimeout = idleTimeout ?? new TunnelOptions().IdleTimeout,
        };
        var credentials = TunnelCredentials.Load(options);
        var session = new TunnelSession(options, credentials, NullLogger.Instance);
        session.Start();
        await session.FirstAttempt.WaitAsync(Timeouts.Default);
        Assert.Equal(TunnelPhase.Up, session.Status.Phase);
        TunnelClient? client = null;
        if (clientEnd)
        {
            client = await TunnelClient.StartAsync(options, clientLoggerFactory ?? NullLoggerFactory.Instance, viaPseudonym);
            await client.FirstAttempt.WaitAsync(Timeouts.Default);
            Assert.Equal(TunnelPhase.Up, client.Status.Phase);
        }
        return new InProcessEnds(directory, server, credentials, session, client);
    }

    public Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        request.Version = HttpVersion.Version20;
        request.VersionPolicy = HttpVersionPolicy.RequestVersionExact;
        return _session.Invoker.SendAsync(request, cancellationToken);
    }

    /// <summary>An extended CONNECT for <c>x-test</c>, as the client end sends an application's upgrade.</summary>
    public Task<HttpResponseMessage> UpgradeAsync(string path, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Connect, Origin + path);
        request.Headers.Protocol = "x-test";
        return SendAsync(request, cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        if (_client is not null)
        {
            await _client.DisposeAsync();
        }
        await _session.DisposeAsync();
        _credentials.Dispose();
        await _server.DisposeAsync();
        _directory.Dispose();
    }
}
