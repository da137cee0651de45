using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;
using Passage.Transport;

// Micro-benchmarks of Passage's hot paths: the ClientHello a pass-through relay reads, the CONNECT head a
// CONNECT relay reads, the destination policy checked per tunnel, and the byte pump over loopback.
// Run: cd bench/micro && dotnet run -c Release -- --filter '*'   (add --job short for a quick look)
BenchmarkSwitcher.FromAssembly(typeof(ParseBenchmarks).Assembly).Run(args);

/// <summary>Parsing what a client sends first: a real TLS 1.3 ClientHello, an HTTP/1.1 CONNECT head.</summary>
[MemoryDiagnoser]
public class ParseBenchmarks
{
    private ReadOnlySequence<byte> _hello;
    private ReadOnlySequence<byte> _helloSplit;
    private ReadOnlySequence<byte> _connect;
    private ReadOnlySequence<byte> _connectWithHeaders;

    [GlobalSetup]
    public void Setup()
    {
        var hello = ClientHelloCapture.Capture("www.example.com");
        _hello = new ReadOnlySequence<byte>(hello);
        _helloSplit = Segments.Split(hello, 3);
        _connect = new ReadOnlySequence<byte>("CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\n\r\n"u8.ToArray());
        _connectWithHeaders = new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(
            "CONNECT www.example.com:443 HTTP/1.1\r\nHost: www.example.com:443\r\nUser-Agent: curl/8.5.0\r\n"
            + "Proxy-Connection: Keep-Alive\r\nProxy-Authorization: Bearer 0123456789abcdef0123456789abcdef\r\n\r\n"));
        if (ClientHelloParser.Parse(_hello, ClientHelloParser.DefaultMaxHandshakeBytes).Status != ClientHelloStatus.Complete
            || ClientHelloParser.Parse(_helloSplit, ClientHelloParser.DefaultMaxHandshakeBytes).Status != ClientHelloStatus.Complete
            || Http1ConnectParser.Parse(_connect, Http1ParseLimits.Default).Status != Http1ParseStatus.Complete
            || Http1ConnectParser.Parse(_connectWithHeaders, Http1ParseLimits.Default).Status != Http1ParseStatus.Complete)
        {
            throw new InvalidOperationException("a benchmark input does not parse");
        }
    }

    [Benchmark(Description = "ClientHello, one segment")]
    public int ClientHello() => (int)ClientHelloParser.Parse(_hello, ClientHelloParser.DefaultMaxHandshakeBytes).Status;

    [Benchmark(Description = "ClientHello, three segments")]
    public int ClientHelloSplit() => (int)ClientHelloParser.Parse(_helloSplit, ClientHelloParser.DefaultMaxHandshakeBytes).Status;

    [Benchmark(Description = "CONNECT head, Host only")]
    public int Connect() => (int)Http1ConnectParser.Parse(_connect, Http1ParseLimits.Default).Status;

    [Benchmark(Description = "CONNECT head, 5 headers")]
    public int ConnectWithHeaders() => (int)Http1ConnectParser.Parse(_connectWithHeaders, Http1ParseLimits.Default).Status;
}

/// <summary>The per-tunnel policy: name and port rules, then every resolved address.</summary>
[MemoryDiagnoser]
public class PolicyBenchmarks
{
    private DestinationRules _rules = DestinationRules.Default;
    private readonly AddressPolicy _policy = AddressPolicy.PublicOnly;
    private readonly IPAddress _public4 = IPAddress.Parse("93.184.216.34");
    private readonly IPAddress _private4 = IPAddress.Parse("10.1.2.3");
    private readonly IPAddress _public6 = IPAddress.Parse("2606:4700:4700::1111");

    [GlobalSetup]
    public void Setup()
    {
        var errors = new List<string>();
        _rules = DestinationRules.Parse(
            ["*.example.com:443", "api.internal.test:8443", "~^cdn[0-9]+\\.example\\.net$:443", "203.0.113.7:22", "*:443"],
            ["blocked.example.com:*", "*:25"],
            "relay.allow", "relay.deny", errors);
        if (errors.Count > 0)
        {
            throw new InvalidOperationException(string.Join("; ", errors));
        }
    }

    [Benchmark(Description = "rules, suffix match")]
    public bool RulesSuffix() => _rules.Check("www.example.com", 443).IsAllowed;

    [Benchmark(Description = "rules, deny wins")]
    public bool RulesDenied() => _rules.Check("blocked.example.com", 443).IsAllowed;

    [Benchmark(Description = "rules, regex match")]
    public bool RulesRegex() => _rules.Check("cdn42.example.net", 443).IsAllowed;

    [Benchmark(Description = "address, public IPv4")]
    public bool AddressPublic4() => _policy.Check(_public4).IsAllowed;

    [Benchmark(Description = "address, private IPv4")]
    public bool AddressPrivate4() => _policy.Check(_private4).IsAllowed;

    [Benchmark(Description = "address, public IPv6")]
    public bool AddressPublic6() => _policy.Check(_public6).IsAllowed;
}

/// <summary>
/// One BytePump between two loopback socket pairs (sender → relayIn ⇒ pump ⇒ relayOut → sink), running for
/// the whole benchmark; one operation sends Size bytes and waits until the sink has them all.
/// </summary>
public class PumpBenchmarks
{
    private Socket? _sender, _relayIn, _relayOut, _sink;
    private Task<PumpResult>? _pump;
    private byte[] _payload = [];
    private byte[] _receive = [];

    [Params(64, 64 * 1024, 1024 * 1024)]
    public int Size { get; set; }

    [Params(true, false)]
    public bool ZeroCopy { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        (_sender, _relayIn) = Pair();
        (_relayOut, _sink) = Pair();
        _pump = BytePump.RunAsync(new SocketConnection(_relayIn), new SocketConnection(_relayOut),
            new PumpOptions { ZeroCopy = ZeroCopy, IdleTimeout = Timeout.InfiniteTimeSpan });
        _payload = new byte[Size];
        Random.Shared.NextBytes(_payload);
        _receive = new byte[Math.Max(Size, 256 * 1024)];
    }

    [Benchmark(Description = "pump Size bytes one way")]
    public async Task OneWay()
    {
        var send = _sender!.SendAsync(_payload, SocketFlags.None);
        for (var got = 0; got < Size;)
        {
            var n = await _sink!.ReceiveAsync(_receive, SocketFlags.None);
            if (n == 0)
            {
                throw new IOException("the pump closed");
            }
            got += n;
        }
        await send;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _sender!.Shutdown(SocketShutdown.Send);
        _sink!.Shutdown(SocketShutdown.Send);
        _pump!.Wait(TimeSpan.FromSeconds(10));
        foreach (var s in new[] { _sender, _relayIn, _relayOut, _sink })
        {
            s!.Dispose();
        }
    }

    private static (Socket Client, Socket Server) Pair()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.Connect(listener.LocalEndPoint!);
        var server = listener.Accept();
        server.NoDelay = true;
        return (client, server);
    }
}

/// <summary>A real TLS ClientHello record for a name, taken from SslStream's first write (no peer at all).</summary>
internal static class ClientHelloCapture
{
    public static byte[] Capture(string serverName)
    {
        var capture = new CaptureStream();
        using var tls = new SslStream(capture);
        try
        {
            tls.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = serverName });
        }
        catch (IOException) when (capture.First is not null)
        {
        }
        return capture.First ?? throw new InvalidOperationException("no ClientHello written");
    }

    private sealed class CaptureStream : Stream
    {
        public byte[]? First { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new IOException("captured");
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => First ??= buffer.AsSpan(offset, count).ToArray();
    }
}

/// <summary>Splits bytes into a multi-segment sequence, as a pipe reader may hand them over.</summary>
internal static class Segments
{
    public static ReadOnlySequence<byte> Split(byte[] bytes, int parts)
    {
        var size = (bytes.Length + parts - 1) / parts;
        Segment? first = null, last = null;
        for (var offset = 0; offset < bytes.Length; offset += size)
        {
            var next = new Segment(bytes.AsMemory(offset, Math.Min(size, bytes.Length - offset)), offset);
            if (last is null)
            {
                first = next;
            }
            else
            {
                last.SetNext(next);
            }
            last = next;
        }
        return new ReadOnlySequence<byte>(first!, 0, last!, last!.Memory.Length);
    }

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, long runningIndex)
        {
            Memory = memory;
            RunningIndex = runningIndex;
        }

        public void SetNext(Segment next) => Next = next;
    }
}
