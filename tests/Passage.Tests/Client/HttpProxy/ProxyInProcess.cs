using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Client;
using Passage.Identity;
using Passage.Relay.Connect;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Transport;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>
/// The client's HTTP proxy in this process, in front of a relay in this process, and a listening origin on loopback
/// that only the relay reaches (as origin.test): what a test of forwarding needs to watch both ends and the tunnel
/// between them (the relay's open tunnels, the proxy's open connections). The origin's connections are the test's to accept.
/// </summary>
internal sealed class ProxyInProcess : IAsyncDisposable
{
    private readonly PassageClient _client;
    private readonly LocalProxy _proxy;
    private readonly MetricsRecorder _proxyMetrics;

    private ProxyInProcess(Socket listener, ConnectHarness relay, PassageClient client, LocalProxy proxy, RelayMetrics metrics, MetricsRecorder proxyMetrics)
    {
        (Listener, Relay, _client, _proxy, Bytes, _proxyMetrics) = (listener, relay, client, proxy, metrics.Bytes, proxyMetrics);
    }

    public Socket Listener { get; }

    public int OriginPort => ((IPEndPoint)Listener.LocalEndPoint!).Port;

    public ConnectHarness Relay { get; }

    /// <summary>The bytes the HTTP proxy counted as delivered each way.</summary>
    public ByteTally Bytes { get; }

    /// <summary>The application connections the HTTP proxy holds open now.</summary>
    /// <remarks>
    /// Over all tags: <c>connections.open</c> carries no <c>front_door</c>, and these metrics are the HTTP proxy's alone. Read
    /// by front door it was 0 whatever was open, and every wait for it ended at once.
    /// </remarks>
    public long OpenAppConnections => _proxyMetrics.Total("passage.relay.connections.open");

    /// <param name="relayOptions">Changes the relay's options, as <see cref="ConnectHarness.StartAsync"/> does.</param>
    public static async Task<ProxyInProcess> StartAsync(Func<ConnectOptions, ConnectOptions>? relayOptions = null)
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        var relay = await ConnectHarness.StartAsync(relayOptions);
        var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)] });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var metrics = new RelayMetrics();
        var recorder = new MetricsRecorder(metrics.Meter);
        // The idle timeout stays at its default (minutes): whatever a test waits for must come before it.
        var proxy = LocalProxy.Start(client, new LocalProxyOptions { SocksEndpoints = [], HttpEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)] }, metrics: metrics);
        return new ProxyInProcess(listener, relay, client, proxy, metrics, recorder);
    }

    /// <summary>An application's connection to the HTTP proxy.</summary>
    /// <param name="receiveBufferSize">The application's receive buffer, fixed (a small one keeps what it does not read waiting at the proxy); the system's own when null.</param>
    public async Task<Socket> ConnectAppAsync(int? receiveBufferSize = null)
    {
        var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (receiveBufferSize is { } size)
        {
            app.ReceiveBufferSize = size;
        }
        await app.ConnectAsync(_proxy.HttpEndpoints[0]).WaitAsync(Timeouts.Default);
        return app;
    }

    /// <summary>Sends <paramref name="request"/> (Latin-1) on a new application connection, and accepts the origin's connection it opens.</summary>
    public async Task<(Socket App, Socket Origin)> SendAsync(string request, int? receiveBufferSize = null)
    {
        var app = await ConnectAppAsync(receiveBufferSize);
        await Loopback.SendAllAsync(app, Encoding.Latin1.GetBytes(request));
        var origin = await Listener.AcceptAsync().WaitAsync(Timeouts.Default);
        return (app, origin);
    }

    public async ValueTask DisposeAsync()
    {
        await _proxy.DisposeAsync();
        await _client.DisposeAsync();
        await Relay.DisposeAsync();
        _proxyMetrics.Dispose();
        Listener.Dispose();
    }
}
