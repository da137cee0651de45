using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Client;
using Passage.Client.Socks5;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using static Passage.Client.Socks5.Socks5Protocol;

namespace Passage.Tests.Client;

/// <summary>
/// The SOCKS5 and HTTP front doors in this process, in front of a relay in this process: what happens to an application's
/// connection while the relay opens its tunnel.
/// </summary>
public sealed class TunnelOpeningTests
{
    /// <summary>
    /// An application that leaves while the relay is still dialing its destination (here one that never answers, with a
    /// relay that waits for it for minutes) ends its tunnel's opening: its connection is not held, nor the relay's dial,
    /// until the relay gives up, and nothing is counted as a tunnel that failed. The connection used to stay open until
    /// the relay's connect timeout, its failure then counted as one given to an application that was long gone. Its end
    /// of stream looks the same whether it closed or only half-closed: one that half-closed, as here, hears general
    /// failure. One that resets hears nothing.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_application_that_leaves_while_the_relay_dials_ends_the_tunnels_opening(bool reset)
    {
        using var blackhole = new Blackhole();
        await using var path = await DoorsInProcess.StartAsync();
        using (var app = await path.ConnectAppAsync())
        {
            await Loopback.SendAllAsync(app, Request(blackhole.Port));
            Assert.Equal(new byte[] { Socks5Protocol.Version, MethodNoAuth }, await Loopback.ReadToEndAsync(app, 2));
            // The relay dials before the application leaves.
            await Timeouts.WaitUntilAsync(() => DialsTo(blackhole.Port) == 1, () => $"{DialsTo(blackhole.Port)} dials to the destination");
            if (reset)
            {
                app.LingerState = new LingerOption(true, 0);
            }
            else
            {
                app.Shutdown(SocketShutdown.Send);
                Assert.Equal(ReplyBytes(Reply.GeneralFailure), await Loopback.ReadToEndAsync(app));
            }
        }
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections still open");
        await Timeouts.WaitUntilAsync(() => DialsTo(blackhole.Port) == 0, () => $"{DialsTo(blackhole.Port)} dials to the destination still under way");
        Assert.Equal(0, path.TunnelsFailed);
    }

    /// <summary>
    /// What the application sends after its request while the relay dials (more than the front door reads meanwhile) reaches
    /// the destination whole and in order, once the tunnel opens.
    /// </summary>
    [Fact]
    public async Task What_the_application_sends_while_the_relay_dials_reaches_the_destination_whole()
    {
        using var destination = new HeldDestination();
        await using var path = await DoorsInProcess.StartAsync();
        using var app = await path.ConnectAppAsync();
        var data = RandomNumberGenerator.GetBytes(64 * 1024);

        await Loopback.SendAllAsync(app, (byte[])[.. Request(destination.Port), .. data.AsSpan(0, 100)]);
        Assert.Equal(new byte[] { Socks5Protocol.Version, MethodNoAuth }, await Loopback.ReadToEndAsync(app, 2));
        await Timeouts.WaitUntilAsync(() => DialsTo(destination.Port) == 1, () => $"{DialsTo(destination.Port)} dials to the destination");
        var rest = Loopback.SendAllAsync(app, data.AsMemory(100));
        using var origin = await destination.ReleaseAsync();

        Assert.Equal(data, await Loopback.ReadToEndAsync(origin, data.Length));
        await rest;
        Assert.Equal(ReplyBytes(Reply.Succeeded), await Loopback.ReadToEndAsync(app, 10));
    }

    /// <summary>
    /// An application that half-closes behind bytes it sent after its request, while the relay dials (a request sent
    /// whole, with nothing more to say), has not left: its tunnel opens, the destination gets the bytes, and the
    /// application its answer.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_application_that_half_closes_behind_what_it_sent_while_the_relay_dials_gets_its_tunnel(bool withRequest)
    {
        using var destination = new HeldDestination();
        await using var path = await DoorsInProcess.StartAsync();
        using var app = await path.ConnectAppAsync();

        // The bytes come with the request (read with it), or after it, while the relay dials.
        await Loopback.SendAllAsync(app, withRequest ? (byte[])[.. Request(destination.Port), .. "ping"u8] : Request(destination.Port));
        Assert.Equal(new byte[] { Socks5Protocol.Version, MethodNoAuth }, await Loopback.ReadToEndAsync(app, 2));
        await Timeouts.WaitUntilAsync(() => DialsTo(destination.Port) == 1, () => $"{DialsTo(destination.Port)} dials to the destination");
        if (!withRequest)
        {
            await Loopback.SendAllAsync(app, "ping"u8.ToArray());
        }
        app.Shutdown(SocketShutdown.Send);
        using var origin = await destination.ReleaseAsync();

        Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(origin, 4));
        await Loopback.SendAllAsync(origin, "pong"u8.ToArray());
        origin.Shutdown(SocketShutdown.Send);
        var answer = await Loopback.ReadToEndAsync(app);
        Assert.Equal([.. ReplyBytes(Reply.Succeeded), .. "pong"u8], answer);
    }

    /// <summary>
    /// The HTTP proxy's CONNECT as the SOCKS5 door's: an application that leaves while the relay dials ends the opening, and
    /// one that half-closed with nothing sent behind its request hears why it has no tunnel (400), uncounted.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task An_application_that_leaves_its_http_connect_while_the_relay_dials_ends_the_tunnels_opening(bool reset)
    {
        using var blackhole = new Blackhole();
        await using var path = await DoorsInProcess.StartAsync();
        using (var app = await path.ConnectAppAsync(http: true))
        {
            await Loopback.SendAllAsync(app, ConnectRequest(blackhole.Port));
            await Timeouts.WaitUntilAsync(() => DialsTo(blackhole.Port) == 1, () => $"{DialsTo(blackhole.Port)} dials to the destination");
            if (reset)
            {
                app.LingerState = new LingerOption(true, 0);
            }
            else
            {
                app.Shutdown(SocketShutdown.Send);
                var answer = System.Text.Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
                Assert.StartsWith("HTTP/1.1 400 ", answer, StringComparison.Ordinal);
                Assert.Contains("the application ended its side before its tunnel opened", answer, StringComparison.Ordinal);
            }
        }
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections still open");
        await Timeouts.WaitUntilAsync(() => DialsTo(blackhole.Port) == 0, () => $"{DialsTo(blackhole.Port)} dials to the destination still under way");
        Assert.Equal(0, path.TunnelsFailed);
    }

    /// <summary>
    /// Through the HTTP proxy's CONNECT too, what the application sends while the relay dials (more than is read meanwhile),
    /// then its half-close, reach the destination whole, and the destination's answer comes back behind the 200.
    /// </summary>
    [Fact]
    public async Task What_the_application_sends_before_its_http_connect_is_answered_reaches_the_destination_whole()
    {
        using var destination = new HeldDestination();
        await using var path = await DoorsInProcess.StartAsync();
        using var app = await path.ConnectAppAsync(http: true);
        var data = RandomNumberGenerator.GetBytes(64 * 1024);

        await Loopback.SendAllAsync(app, (byte[])[.. ConnectRequest(destination.Port), .. data.AsSpan(0, 100)]);
        await Timeouts.WaitUntilAsync(() => DialsTo(destination.Port) == 1, () => $"{DialsTo(destination.Port)} dials to the destination");
        await Loopback.SendAllAsync(app, data.AsMemory(100));
        app.Shutdown(SocketShutdown.Send);
        using var origin = await destination.ReleaseAsync();

        Assert.Equal(data, await Loopback.ReadToEndAsync(origin, data.Length));
        await Loopback.SendAllAsync(origin, "pong"u8.ToArray());
        origin.Shutdown(SocketShutdown.Send);
        var answer = System.Text.Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\npong", answer, StringComparison.Ordinal);
    }

    /// <summary>A CONNECT to origin.test at <paramref name="port"/>.</summary>
    private static byte[] ConnectRequest(int port) =>
        System.Text.Encoding.ASCII.GetBytes($"CONNECT origin.test:{port} HTTP/1.1\r\nHost: origin.test:{port}\r\n\r\n");

    /// <summary>
    /// A destination on loopback whose accept queue is full until <see cref="ReleaseAsync"/>: a relay's dial to it waits (its
    /// SYN dropped) until then, and goes through at its next try after.
    /// </summary>
    private sealed class HeldDestination : IDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly Socket _filler = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        public HeldDestination()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(0);
            _filler.Connect(_listener.LocalEndPoint!);
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        /// <summary>Takes the connection that filled the queue, and returns the next one: the relay's.</summary>
        public async Task<Socket> ReleaseAsync()
        {
            (await _listener.AcceptAsync().WaitAsync(Timeouts.Default)).Dispose();
            return await _listener.AcceptAsync().WaitAsync(Timeouts.Default);
        }

        public void Dispose()
        {
            _filler.Dispose();
            _listener.Dispose();
        }
    }

    /// <summary>Connections to 127.0.0.1:<paramref name="port"/> still dialing (SYN sent, no answer), from /proc/net/tcp.</summary>
    private static int DialsTo(int port)
    {
        var remote = $"0100007F:{port:X4}";
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[2] == remote && f[3] == "02");
    }

    /// <summary>A greeting without authentication and a CONNECT to origin.test at <paramref name="port"/>, in one flight.</summary>
    private static byte[] Request(int port) =>
        [Socks5Protocol.Version, 1, MethodNoAuth, Socks5Protocol.Version, CommandConnect, 0, AddressDomain, 11, .. "origin.test"u8, (byte)(port >> 8), (byte)port];

    /// <summary>A relay, a client of it and its SOCKS5 and HTTP front doors, all in this process, watched through their counters.</summary>
    private sealed class DoorsInProcess : IAsyncDisposable
    {
        private readonly ConnectHarness _relay;
        private readonly PassageClient _client;
        private readonly LocalProxy _proxy;
        private readonly MetricsRecorder _proxyMetrics;
        private readonly MetricsRecorder _clientMetrics;

        private DoorsInProcess(ConnectHarness relay, PassageClient client, LocalProxy proxy, MetricsRecorder proxyMetrics, MetricsRecorder clientMetrics)
        {
            (_relay, _client, _proxy, _proxyMetrics, _clientMetrics) = (relay, client, proxy, proxyMetrics, clientMetrics);
        }

        /// <summary>The application connections the front doors hold open now.</summary>
        public long OpenAppConnections => _proxyMetrics.Total("passage.relay.connections.open");

        /// <summary>Tunnels the client could not open, as counted for the applications that asked.</summary>
        public long TunnelsFailed => _clientMetrics.Total("passage.client.tunnels.failed");

        /// <summary>
        /// Starts the three. The relay waits ten minutes for a destination to answer its dial, and the client as long for the
        /// relay's answer: whatever a test waits for comes before either gives up.
        /// </summary>
        public static async Task<DoorsInProcess> StartAsync()
        {
            var relay = await ConnectHarness.StartAsync(limits: new RelayLimits { ConnectTimeout = TimeSpan.FromMinutes(10) });
            var client = new PassageClient(new PassageClientOptions
            {
                Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)],
                AnswerTimeout = Timeout.InfiniteTimeSpan,
            });
            await client.StartAsync().WaitAsync(Timeouts.Default);
            var clientMetrics = new MetricsRecorder(client.Metrics.Meter);
            var metrics = new RelayMetrics();
            var proxyMetrics = new MetricsRecorder(metrics.Meter);
            var proxy = LocalProxy.Start(client, new LocalProxyOptions { SocksEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)], HttpEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)] }, metrics: metrics);
            return new DoorsInProcess(relay, client, proxy, proxyMetrics, clientMetrics);
        }

        /// <summary>An application's connection to the SOCKS5 port, or to the HTTP proxy's.</summary>
        public async Task<Socket> ConnectAppAsync(bool http = false)
        {
            var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await app.ConnectAsync(http ? _proxy.HttpEndpoints[0] : _proxy.SocksEndpoints[0]).WaitAsync(Timeouts.Default);
            return app;
        }

        public async ValueTask DisposeAsync()
        {
            await _proxy.DisposeAsync();
            await _client.DisposeAsync();
            await _relay.DisposeAsync();
            _proxyMetrics.Dispose();
            _clientMetrics.Dispose();
        }
    }
}
