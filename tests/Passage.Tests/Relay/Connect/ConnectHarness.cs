using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Passage.Identity;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>A CONNECT relay in this process: a TLS and a plain endpoint on 127.0.0.1:0, counters collected.</summary>
internal sealed partial class ConnectHarness : IAsyncDisposable
{
    private readonly MetricsRecorder _recorder;
    private readonly TemporaryDirectory _directory;

    private ConnectHarness(ConnectRelay relay, RelayMetrics metrics, TemporaryDirectory directory)
    {
        Relay = relay;
        Metrics = metrics;
        _directory = directory;
        _recorder = new MetricsRecorder(metrics.Meter);
    }

    public ConnectRelay Relay { get; }

    public RelayMetrics Metrics { get; }

    public int TlsPort => Relay.LocalEndpoints[0].Port;

    public int PlainPort => Relay.LocalPlainEndpoints[0].Port;

    public string Pin => "sha256//" + Convert.ToBase64String(Relay.NodeId.Hash);

    public string Directory => _directory.Path;

    /// <summary>The relay's certificate, written beside its key for clients that verify by CA file.</summary>
    public string CertificatePath => Path.ChangeExtension(Path.Combine(_directory.Path, "relay.pem"), ".crt");

    public long Counter(string key) => _recorder[key];

    /// <summary>An instrument's sum over all its tags.</summary>
    public long Total(string instrument) => _recorder.Total(instrument);

    /// <summary>An instrument's sum over the measurements of one <c>front_door</c>.</summary>
    public long Total(string instrument, string frontDoor) => _recorder.Total(instrument, frontDoor);

    /// <summary>Every <c>front_door</c> tag counted so far.</summary>
    public IReadOnlyCollection<string> FrontDoors => _recorder.FrontDoors;

    /// <summary>
    /// Starts a relay. By default it allows private destinations (tests run on loopback), maps
    /// origin.test to 127.0.0.1 and allows every port: tests narrow that as they need. It logs to
    /// <paramref name="loggerFactory"/> when given, Kestrel inside it too.
    /// </summary>
    public static async Task<ConnectHarness> StartAsync(
        Func<ConnectOptions, ConnectOptions>? configure = null,
        RelayLimits? limits = null,
        bool allowPrivate = true,
        Func<string, CancellationToken, Task<IPAddress[]>>? dns = null,
        TimeProvider? time = null,
        ILoggerFactory? loggerFactory = null,
        ResolverConf? resolverConf = null)
    {
        var directory = new TemporaryDirectory();
        var options = new ConnectOptions
        {
            Endpoints = [new IPEndPoint(IPAddress.Loopback, 0)],
            PlainEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)],
            KeyFile = Path.Combine(directory.Path, "relay.pem"),
            Allow = ["*:*"],
        };
        options = configure?.Invoke(options) ?? options;
        var resolver = new DestinationResolver(
            new AddressPolicy(allowPrivate, []),
            new Dictionary<string, IPAddress[]> { ["origin.test"] = [IPAddress.Loopback] },
            dns,
            dns: resolverConf);
        var metrics = new RelayMetrics();
        var relay = ConnectRelay.Create(options, limits ?? new RelayLimits(), resolver, loggerFactory, metrics, time);
        var harness = new ConnectHarness(relay, metrics, directory);
        await relay.StartAsync();
        return harness;
    }

    /// <summary>A raw connection to the plain endpoint, from <paramref name="from"/> (a loopback address) when given.</summary>
    public async Task<Socket> ConnectPlainAsync(IPAddress? from = null)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        if (from is not null)
        {
            socket.Bind(new IPEndPoint(from, 0));
        }
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, PlainPort)).WaitAsync(Timeouts.Default);
        return socket;
    }

    /// <summary>
    /// Sends <paramref name="head"/> (each character one byte, Latin-1) on the plain endpoint, from <paramref name="from"/>
    /// when given, and returns the status line and headers of the answer.
    /// </summary>
    public async Task<(int Status, string Head, Socket Socket)> SendHeadAsync(string head, IPAddress? from = null)
    {
        var socket = await ConnectPlainAsync(from);
        await Loopback.SendAllAsync(socket, Encoding.Latin1.GetBytes(head));
        var answer = await ReadHeadAsync(socket);
        return (int.Parse(answer.Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture), answer, socket);
    }

    /// <summary>Reads an HTTP response head byte by byte (so no tunnel byte is consumed).</summary>
    /// <summary>
    /// TLS to the relay on <paramref name="inner"/> as an HTTP/1.1 client (ALPN http/1.1, or <paramref name="protocol"/>),
    /// trusting the relay the test started.
    /// </summary>
    public static async Task<SslStream> TlsToRelayAsync(Stream inner, SslApplicationProtocol? protocol = null)
    {
        var tls = new SslStream(inner);
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "relay.test",
            ApplicationProtocols = [protocol ?? SslApplicationProtocol.Http11],
            // Pinning is covered elsewhere.
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        return tls;
    }

    /// <summary>Sends an HTTP/1.1 CONNECT for <paramref name="target"/> on <paramref name="stream"/>; the relay's answer must be 200.</summary>
    public static async Task ConnectThroughAsync(Stream stream, string target)
    {
        await stream.WriteAsync(Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
        var head = new List<byte>();
        var one = new byte[1];
        while (!head.ToArray().AsSpan().EndsWith("\r\n\r\n"u8))
        {
            Assert.Equal(1, await stream.ReadAsync(one).AsTask().WaitAsync(Timeouts.Default));
            head.Add(one[0]);
        }
        Assert.StartsWith("HTTP/1.1 200", Encoding.ASCII.GetString(head.ToArray()));
    }

    /// <summary>
    /// Arguments for a <c>passage relay</c> process serving plain CONNECT on a loopback port from the OS, to any port
    /// and to private addresses (tests run on loopback), its key in <paramref name="keyDirectory"/>; then
    /// <paramref name="extra"/>.
    /// </summary>
    public static string[] PlainRelayArguments(string keyDirectory, params string[] extra) =>
    [
        "relay", "--connect-plain", "127.0.0.1:0", "--allow", "*:*", "--allow-private",
        "--key", Path.Combine(keyDirectory, "relay.pem"), .. extra,
    ];

    /// <summary>The port of a relay process's plain CONNECT endpoint, from the line it prints for it (<c>plain ... http://127.0.0.1:PORT</c>).</summary>
    public static async Task<int> PlainPortAsync(PassageProcess relay)
    {
        var line = await relay.WaitForLineAsync(l => l.StartsWith("plain ", StringComparison.Ordinal));
        return int.Parse(PlainProxyPort().Match(line).Groups["port"].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"http://127\.0\.0\.1:(?<port>\d+)")]
    private static partial System.Text.RegularExpressions.Regex PlainProxyPort();

    /// <summary>
    /// Connects to a relay's plain CONNECT endpoint on 127.0.0.1:<paramref name="relayPort"/> and asks for
    /// <paramref name="target"/>: the socket (the caller's) and the answer's head.
    /// </summary>
    public static async Task<(Socket Socket, string Head)> RequestTunnelAsync(int relayPort, string target)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relayPort)).WaitAsync(Timeouts.Default);
            await Loopback.SendAllAsync(socket, Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));
            return (socket, await ReadHeadAsync(socket));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static async Task<string> ReadHeadAsync(Socket socket)
    {
        var head = new StringBuilder();
        var one = new byte[1];
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None, cts.Token) == 0)
            {
                break;
            }
            head.Append((char)one[0]);
        }
        return head.ToString();
    }

    /// <summary>
    /// Stops the relay with one tunnel open (and idle): nothing awaits a tunnel, yet the drain must
    /// wait for its end, close it at the deadline, and have its slot, counters and connection count
    /// settled before the stop returns. <paramref name="client"/> is the tunnel's client socket.
    /// </summary>
    public async Task StopWithOneTunnelOpenAsync(Socket client)
    {
        await Relay.StopAsync().WaitAsync(Timeouts.Default);
        Assert.Equal(0, Relay.OpenTunnels);
        Assert.Equal(1, Counter("passage.relay.connections.closed/shutdown"));
        Assert.Equal(0, Counter("passage.relay.tunnels.open"));
        Assert.Equal(0, Counter("passage.relay.connections.open"));
        Assert.True(await Loopback.IsClosedByPeerAsync(client));
    }

    /// <summary>An HttpClient speaking HTTP/2 to the relay's TLS endpoint, pinning the relay's key.</summary>
    public HttpClient CreateHttp2Client(Action<SocketsHttpHandler>? configure = null)
    {
        var handler = new SocketsHttpHandler
        {
            SslOptions = new SslClientAuthenticationOptions { RemoteCertificateValidationCallback = CertificatePin.CreateValidationCallback(Relay.NodeId) },
            EnableMultipleHttp2Connections = false,
        };
        configure?.Invoke(handler);
        return new HttpClient(handler)
        {
            BaseAddress = new Uri($"https://127.0.0.1:{TlsPort}"),
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeouts.Default,
        };
    }

    /// <summary>An extended CONNECT request for <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static HttpRequestMessage ExtendedConnect(string host, int port)
    {
        var request = new HttpRequestMessage(HttpMethod.Connect, MasqueTcpPath.PathFor(host, port))
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        request.Headers.Protocol = "connect-tcp";
        return request;
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        _recorder.Dispose();
        Metrics.Dispose();
        _directory.Dispose();
    }
}
