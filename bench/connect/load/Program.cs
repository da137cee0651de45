using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;

// The load tool of bench/connect/run. Modes:
//   sink                                  listen on 127.0.0.1 (ports from the OS) as a sink and as an echo
//                                         server; print "sink PORT" and "echo PORT"; run until killed (at most 1 h)
//   freeport                              print a port the OS had free a moment ago (for tinyproxy's config)
//   throughput --via V --target H:P --gib G [--proxy H:P] [--cert FILE] [--pid PID] [--clk-tck N] [--direction up|down]
//                                         move G GiB one way: up (the default) sends it to the sink, down has the
//                                         sink send it; print "gbps X cpu_s_per_gb Y"
//   setup --via V --target H:P --count K [--proxy H:P] [--cert FILE] [--pid PID] [--clk-tck N]
//                                         K times: connect, CONNECT, send 32 bytes, read them back, close;
//                                         print "p50_us X p99_us Y errors E cpu_ms_per_1k Z"; --samples FILE also writes
//                                         each setup's µs, in the order they ran, one per line (to see where a tail comes from)
//   storm --via V --target H:P --concurrency C --seconds S [--proxy H:P] [--cert FILE] [--pid PID] [--clk-tck N]
//                                         C clients at once, each doing setups (as above) one after another for S s;
//                                         print "per_s X p50_us Y p99_us Z max_us M errors E cpu_ms_per_1k W"
//   idle --via V --target H:P --steps N1,N2,... --pid PID [--settle S] [--proxy H:P] [--hello SNI] [--at-step CMD]
//                                         open connections up to N1, N2, ... (kept open, idle); S seconds after
//                                         each step read VmRSS of PID; print "rss_kib_N X" per step and
//                                         "slope_kib_per_conn Y" (least squares over the steps); then close all.
//                                         --at-step: after each reading run `sh -c "CMD N"` (N: the step) while
//                                         the connections are still open, e.g. to take a heap snapshot
//   silent-dns                            bind UDP 127.0.0.1:53 and answer only names under answer.test (A 127.0.0.1,
//                                         TTL 60; no AAAA), every other name never: a DNS server that stays silent
//                                         for them (run in a network namespace of its own); run until killed (1 h at most)
//   names --proxy H:P --count N --target H:P [--probes K] [--probe-by literal|name]
//                                         N plain CONNECTs at once, each to its own name (nameI.silent.test:443);
//                                         meanwhile, K CONNECT + echo setups one after another to --target (a
//                                         literal; with --probe-by name, to probeI.answer.test at its port, a new
//                                         name each, which the silent-dns server answers); print per status and error type how many answered and how
//                                         soon ("answer STATUS ERROR count C first_s X last_s Y"), the names
//                                         unanswered after 120 s, and the probes ("probes p50_ms X max_ms Y errors E")
// V is none (straight to the target), plain (HTTP/1.1 CONNECT over TCP), tls (HTTP/1.1 CONNECT over
// TLS to the proxy, whose certificate must equal --cert byte for byte: a pin, no CA, no name check),
// relay (TCP to --proxy, which forwards to the target by itself: HAProxy, pass-through) or tlsrelay
// (TLS to --proxy, pinned as for tls, which forwards plain bytes: HAProxy terminating TLS).
// --hello SNI: the first bytes on the stream (after CONNECT, if any) are a real TLS 1.3 ClientHello record
// naming SNI, as a pass-through relay needs; the sink and echo server skip a leading handshake record, so
// the payload after it is plain bytes on every path (no TLS cost at either end).
// --streams N (throughput): N connections at once, each carrying G/N GiB; Gbit/s of the whole.
// --pid names the proxy process: its utime+stime from /proc/PID/stat is read before and after.
var inv = CultureInfo.InvariantCulture;
if (args.Length == 0)
{
    Console.Error.WriteLine("usage: connect-load sink | freeport | throughput ... | setup ...");
    return 2;
}
var options = ParseOptions(args.AsSpan(1));
try
{
    switch (args[0])
    {
        case "sink":
            return Sink.Run();
        case "freeport":
            using (var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            {
                probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
                Console.WriteLine(((IPEndPoint)probe.LocalEndPoint!).Port);
            }
            return 0;
        case "throughput":
            {
                var path = PathOptions.From(options);
                var gib = double.Parse(options.GetValueOrDefault("gib", "2"), inv);
                var total = (long)(gib * 1024 * 1024 * 1024);
                var cpuBefore = Cpu.Seconds(path.Pid, path.ClockTicks);
                var streams = int.Parse(options.GetValueOrDefault("streams", "1"), inv);
                var download = options.GetValueOrDefault("direction", "up") switch
                {
                    "up" => false,
                    "down" => true,
                    var other => throw new ArgumentException($"--direction must be up or down, not {other}"),
                };
                var seconds = Throughput.RunMany(path, total, streams, download);
                var cpu = Cpu.Seconds(path.Pid, path.ClockTicks) - cpuBefore;
                var gbps = total * 8 / seconds / 1e9;
                Console.WriteLine(string.Create(inv, $"gbps {gbps:F2} cpu_s_per_gb {(path.Pid is null ? "-" : (cpu / (total / 1e9)).ToString("F3", inv))}"));
                return 0;
            }
        case "setup":
            {
                var path = PathOptions.From(options);
                var count = int.Parse(options.GetValueOrDefault("count", "2000"), inv);
                var cpuBefore = Cpu.Seconds(path.Pid, path.ClockTicks);
                var (samples, errors, firstError) = Setup.Run(path, count);
                var cpu = Cpu.Seconds(path.Pid, path.ClockTicks) - cpuBefore;
                if (options.GetValueOrDefault("samples") is { } samplesFile)
                {
                    File.WriteAllLines(samplesFile, samples.Select(s => s.ToString("F0", inv)));
                }
                if (Latencies("setup", samples, errors, firstError, count) is not { } latencies)
                {
                    return 1;
                }
                Console.WriteLine(string.Create(inv, $"{latencies} errors {errors} cpu_ms_per_1k {(path.Pid is null ? "-" : (cpu * 1000 / (count / 1000.0)).ToString("F0", inv))}"));
                return 0;
            }
        case "storm":
            {
                var path = PathOptions.From(options);
                var concurrency = int.Parse(options.GetValueOrDefault("concurrency", "64"), inv);
                var seconds = double.Parse(options.GetValueOrDefault("seconds", "5"), inv);
                var cpuBefore = Cpu.Seconds(path.Pid, path.ClockTicks);
                var (samples, errors, firstError, elapsed) = Storm.Run(path, concurrency, TimeSpan.FromSeconds(seconds));
                var cpu = Cpu.Seconds(path.Pid, path.ClockTicks) - cpuBefore;
                if (Latencies("storm", samples, errors, firstError, samples.Count + errors) is not { } latencies)
                {
                    return 1;
                }
                Console.WriteLine(string.Create(inv, $"per_s {samples.Count / elapsed:F0} {latencies} max_us {samples[^1]:F0} errors {errors} cpu_ms_per_1k {(path.Pid is null ? "-" : (cpu * 1000 / (samples.Count / 1000.0)).ToString("F0", inv))}"));
                return 0;
            }
        case "idle":
            {
                var path = PathOptions.From(options);
                var steps = options["steps"].Split(',').Select(x => int.Parse(x, inv)).ToArray();
                var settle = double.Parse(options.GetValueOrDefault("settle", "3"), inv);
                var points = Idle.Run(path, steps, TimeSpan.FromSeconds(settle), options.GetValueOrDefault("at-step"));
                var line = new StringBuilder();
                foreach (var (n, rss) in points)
                {
                    line.Append(inv, $"rss_kib_{n} {rss} ");
                }
                // least squares slope of RSS over the count
                double mx = points.Average(p => (double)p.Count), my = points.Average(p => (double)p.RssKib);
                var sxy = points.Sum(p => (p.Count - mx) * (p.RssKib - my));
                var sxx = points.Sum(p => (p.Count - mx) * (p.Count - mx));
                line.Append(inv, $"slope_kib_per_conn {(sxx > 0 ? sxy / sxx : 0):F2}");
                Console.WriteLine(line.ToString());
                return 0;
            }
        case "silent-dns":
            using (var dns = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
            {
                dns.Bind(new IPEndPoint(IPAddress.Loopback, 53));
                Console.WriteLine("silent-dns 127.0.0.1:53");
                Console.Out.Flush();
                SilentDns.Serve(dns, TimeSpan.FromHours(1));
            }
            return 0;
        case "names":
            return Names.Run(
                IPEndPoint.Parse(options["proxy"]), IPEndPoint.Parse(options["target"]),
                int.Parse(options.GetValueOrDefault("count", "100"), inv), int.Parse(options.GetValueOrDefault("probes", "20"), inv),
                options.GetValueOrDefault("probe-by", "literal") switch
                {
                    "literal" => false,
                    "name" => true,
                    var other => throw new ArgumentException($"--probe-by must be literal or name, not {other}"),
                });
        default:
            Console.Error.WriteLine($"unknown mode {args[0]}");
            return 2;
    }
}
catch (Exception e) when (e is IOException or SocketException or InvalidOperationException or AuthenticationException)
{
    Console.Error.WriteLine($"{args[0]}: {e.GetType().Name}: {e.Message}");
    return 1;
}

// Sorts the samples (µs) and gives "p50_us X p99_us Y"; says on standard error what failed, and gives null when every
// attempt did.
static string? Latencies(string mode, List<double> samples, int errors, string? firstError, int attempts)
{
    if (samples.Count == 0)
    {
        Console.Error.WriteLine($"{mode}: every attempt failed; first: {firstError}");
        return null;
    }
    if (firstError is not null)
    {
        Console.Error.WriteLine($"{mode}: {errors} of {attempts} failed; first: {firstError}");
    }
    samples.Sort();
    double Percentile(double p) => samples[Math.Min(samples.Count - 1, (int)Math.Ceiling(p * samples.Count) - 1)];
    return string.Create(CultureInfo.InvariantCulture, $"p50_us {Percentile(0.50):F0} p99_us {Percentile(0.99):F0}");
}

static Dictionary<string, string> ParseOptions(ReadOnlySpan<string> rest)
{
    var result = new Dictionary<string, string>(StringComparer.Ordinal);
    for (var i = 0; i + 1 < rest.Length; i += 2)
    {
        if (!rest[i].StartsWith("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"expected --option, got {rest[i]}");
        }
        result[rest[i][2..]] = rest[i + 1];
    }
    return result;
}

/// <summary>How the tool reaches the target: straight, or through a proxy by plain or TLS CONNECT.</summary>
sealed record PathOptions(string Via, IPEndPoint Target, IPEndPoint? Proxy, X509Certificate2? Pin, int? Pid, int ClockTicks, byte[]? Hello)
{
    public static PathOptions From(Dictionary<string, string> o)
    {
        var via = o.GetValueOrDefault("via", "none");
        if (via is not ("none" or "plain" or "tls" or "relay" or "tlsrelay"))
        {
            throw new ArgumentException($"--via must be none, plain, tls, relay or tlsrelay, not {via}");
        }
        var proxy = o.TryGetValue("proxy", out var p) ? IPEndPoint.Parse(p) : null;
        if (via != "none" && proxy is null)
        {
            throw new ArgumentException("--proxy is needed unless --via none");
        }
        var pin = o.TryGetValue("cert", out var c) ? X509CertificateLoader.LoadCertificateFromFile(c) : null;
        if (via is "tls" or "tlsrelay" && pin is null)
        {
            throw new ArgumentException("--cert is needed with --via tls or tlsrelay");
        }
        return new PathOptions(via, IPEndPoint.Parse(o["target"]), proxy, pin,
            o.TryGetValue("pid", out var pid) ? int.Parse(pid, CultureInfo.InvariantCulture) : null,
            int.Parse(o.GetValueOrDefault("clk-tck", "100"), CultureInfo.InvariantCulture),
            o.TryGetValue("hello", out var sni) ? ClientHello.Capture(sni) : null);
    }

    /// <summary>What each CONNECT asks for, when not <see cref="Target"/> itself (a name per connection, say).</summary>
    public Func<string>? ConnectTarget { get; init; }

    /// <summary>Opens a stream to the target (through the proxy if any), ready for payload.</summary>
    public (Socket Socket, Stream Stream) Open()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp)
        {
            NoDelay = true,
            ReceiveTimeout = 30_000,
            SendTimeout = 30_000,
        };
        try
        {
            socket.Connect(Via == "none" ? Target : Proxy!);
            Stream stream = new NetworkStream(socket, ownsSocket: false);
            if (Via is "none" or "relay")
            {
                return (socket, WithHello(stream));
            }
            if (Via is "tls" or "tlsrelay")
            {
                var tls = new SslStream(stream, leaveInnerStreamOpen: false);
                tls.AuthenticateAsClient(new SslClientAuthenticationOptions
                {
                    TargetHost = Proxy!.Address.ToString(),
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                    RemoteCertificateValidationCallback = (_, cert, _, _) => cert is not null && cert.GetRawCertData().AsSpan().SequenceEqual(Pin!.RawData),
                });
                stream = tls;
                if (Via == "tlsrelay")
                {
                    return (socket, WithHello(stream));
                }
            }
            var target = ConnectTarget?.Invoke() ?? Target.ToString();
            var request = Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
            stream.Write(request);
            stream.Flush();
            ReadConnectResponse(stream);
            return (socket, WithHello(stream));
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    Stream WithHello(Stream stream)
    {
        if (Hello is not null)
        {
            stream.Write(Hello);
        }
        return stream;
    }

    // The target never speaks first, so everything up to the blank line is the proxy's answer.
    static void ReadConnectResponse(Stream stream)
    {
        var head = new byte[4096];
        var length = 0;
        while (true)
        {
            var n = stream.Read(head, length, head.Length - length);
            if (n == 0)
            {
                throw new IOException($"proxy closed before answering CONNECT ({length} bytes)");
            }
            length += n;
            var end = head.AsSpan(0, length).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                if (end + 4 != length)
                {
                    throw new IOException("bytes after the CONNECT answer");
                }
                var text = Encoding.ASCII.GetString(head, 0, end);
                if (!(text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal) || text.StartsWith("HTTP/1.0 200", StringComparison.Ordinal)))
                {
                    throw new IOException($"CONNECT refused: {text.Split("\r\n")[0]}");
                }
                return;
            }
            if (length == head.Length)
            {
                throw new IOException("CONNECT answer too long");
            }
        }
    }
}

static class Throughput
{
    // N connections at once (opened first, then started together); the time is until the last is confirmed.
    public static double RunMany(PathOptions path, long total, int streams, bool download)
    {
        if (streams <= 1)
        {
            return Run(path, total, download);
        }
        var opened = Enumerable.Range(0, streams).Select(_ => path.Open()).ToArray();
        var share = total / streams;
        var stopwatch = Stopwatch.StartNew();
        var errors = new List<Exception>();
        var threads = opened.Select(o => new Thread(() =>
        {
            try
            {
                Move(o.Socket, o.Stream, share, download);
            }
            catch (Exception e)
            {
                lock (errors)
                {
                    errors.Add(e);
                }
            }
        })).ToArray();
        foreach (var t in threads)
        {
            t.Start();
        }
        foreach (var t in threads)
        {
            t.Join();
        }
        var seconds = stopwatch.Elapsed.TotalSeconds;
        if (errors.Count > 0)
        {
            throw new IOException($"{errors.Count} of {streams} streams failed; first: {errors[0].Message}");
        }
        return seconds * total / (share * (double)streams);
    }

    // Header: 8 bytes of length; then the payload; the sink answers one byte when it has all of it,
    // so no half-close has to cross the proxy (tinyproxy closes both ways on the first end).
    // Download: the length is negative, and the sink sends that many bytes; the client closes once it
    // has them all.
    public static double Run(PathOptions path, long total, bool download)
    {
        var (socket, stream) = path.Open();
        var stopwatch = Stopwatch.StartNew();
        Move(socket, stream, total, download);
        return stopwatch.Elapsed.TotalSeconds;
    }

    static void Move(Socket socket, Stream stream, long total, bool download)
    {
        if (download)
        {
            Receive(socket, stream, total);
        }
        else
        {
            Send(socket, stream, total);
        }
    }

    static void Receive(Socket socket, Stream stream, long total)
    {
        using (socket)
        using (stream)
        {
            var header = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(header, -total);
            stream.Write(header);
            stream.Flush();
            var buffer = new byte[256 * 1024];
            for (var left = total; left > 0;)
            {
                var n = stream.Read(buffer, 0, (int)Math.Min(left, buffer.Length));
                if (n == 0)
                {
                    throw new IOException($"the stream ended with {left} of {total} bytes missing");
                }
                left -= n;
            }
        }
    }

    static void Send(Socket socket, Stream stream, long total)
    {
        using (socket)
        using (stream)
        {
            var buffer = new byte[256 * 1024];
            Random.Shared.NextBytes(buffer);
            var header = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(header, total);
            stream.Write(header);
            for (var left = total; left > 0;)
            {
                var n = (int)Math.Min(left, buffer.Length);
                stream.Write(buffer, 0, n);
                left -= n;
            }
            stream.Flush();
            var ack = new byte[1];
            if (stream.Read(ack) != 1 || ack[0] != 0x55)
            {
                throw new IOException("the sink did not confirm the whole payload");
            }
        }
    }
}

static class Setup
{
    public static (List<double> Samples, int Errors, string? FirstError) Run(PathOptions path, int count)
    {
        var samples = new List<double>(count);
        var errors = 0;
        string? firstError = null;
        var (payload, back) = Buffers();
        var deadline = Stopwatch.StartNew();
        for (var i = 0; i < count && deadline.Elapsed < TimeSpan.FromSeconds(120); i++)
        {
            if (Once(path, payload, back, ref firstError) is { } us)
            {
                samples.Add(us);
            }
            else
            {
                errors++;
            }
        }
        return (samples, errors + (count - samples.Count - errors), firstError);
    }

    /// <summary>The 32 bytes each setup sends, and room for their echo.</summary>
    public static (byte[] Payload, byte[] Back) Buffers()
    {
        var payload = new byte[32];
        Random.Shared.NextBytes(payload);
        payload[0] = 0x42; // never 0x16: the echo server drops a leading TLS handshake record
        return (payload, new byte[32]);
    }

    /// <summary>One connect, [CONNECT,] send, echo, close: its µs, or null when it failed (the first failure kept).</summary>
    public static double? Once(PathOptions path, byte[] payload, byte[] back, ref string? firstError)
    {
        var stopwatch = Stopwatch.StartNew();
        try
        {
            var (socket, stream) = path.Open();
            using (socket)
            using (stream)
            {
                stream.Write(payload);
                stream.Flush();
                for (var got = 0; got < back.Length;)
                {
                    var n = stream.Read(back, got, back.Length - got);
                    if (n == 0)
                    {
                        throw new IOException($"closed after {got} echoed bytes");
                    }
                    got += n;
                }
                if (!back.AsSpan().SequenceEqual(payload))
                {
                    throw new IOException("echo differs");
                }
            }
            return stopwatch.Elapsed.TotalMicroseconds;
        }
        catch (Exception e) when (e is IOException or SocketException or AuthenticationException)
        {
            firstError ??= $"{e.GetType().Name}: {e.Message}";
            return null;
        }
    }
}

/// <summary>
/// A storm of new connections: <c>concurrency</c> clients, each a thread setting up one connection after another
/// (<see cref="Setup.Once"/>) until the time is up. Closed loop: a new connection starts as soon as one ends.
/// </summary>
static class Storm
{
    public static (List<double> Samples, int Errors, string? FirstError, double Seconds) Run(PathOptions path, int concurrency, TimeSpan duration)
    {
        var results = new (List<double> Samples, int Errors, string? FirstError)[concurrency];
        using var start = new ManualResetEventSlim();
        var clock = new Stopwatch();
        var threads = Enumerable.Range(0, concurrency).Select(i => new Thread(() =>
        {
            var samples = new List<double>();
            var errors = 0;
            string? firstError = null;
            var (payload, back) = Setup.Buffers();
            start.Wait();
            while (clock.Elapsed < duration)
            {
                if (Setup.Once(path, payload, back, ref firstError) is { } us)
                {
                    samples.Add(us);
                }
                else
                {
                    errors++;
                }
            }
            results[i] = (samples, errors, firstError);
        }, 256 * 1024) { IsBackground = true }).ToList();
        threads.ForEach(t => t.Start());
        clock.Start();
        start.Set();
        threads.ForEach(t => t.Join());
        var seconds = clock.Elapsed.TotalSeconds;
        return ([.. results.SelectMany(r => r.Samples)], results.Sum(r => r.Errors), results.Select(r => r.FirstError).FirstOrDefault(e => e is not null), seconds);
    }
}

/// <summary>A real TLS ClientHello record for a name, taken from SslStream's first write (no peer at all).</summary>
static class ClientHello
{
    public static byte[] Capture(string serverName)
    {
        var capture = new CaptureStream();
        using var tls = new SslStream(capture);
        try
        {
            tls.AuthenticateAsClient(new SslClientAuthenticationOptions { TargetHost = serverName });
        }
        catch (Exception e) when (e is CapturedException or IOException && capture.First is not null)
        {
        }
        var first = capture.First ?? throw new InvalidOperationException("no ClientHello written");
        if (first.Length < 5 || first[0] != 0x16 || 5 + ((first[3] << 8) | first[4]) != first.Length)
        {
            throw new InvalidOperationException("the first write is not one handshake record");
        }
        return first;
    }

    sealed class CapturedException() : IOException("captured");

    sealed class CaptureStream : Stream
    {
        public byte[]? First { get; private set; }
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new CapturedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => First ??= buffer.AsSpan(offset, count).ToArray();
    }
}

static class Idle
{
    // Opens connections step by step and keeps them; after each step (and a settle time) reads the RSS
    // of the proxy process. Opening is sequential, so the proxy sees a steady trickle, not a storm.
    public static List<(int Count, long RssKib)> Run(PathOptions path, int[] steps, TimeSpan settle, string? atStep)
    {
        var pid = path.Pid ?? throw new ArgumentException("--pid is needed with idle");
        var held = new List<(Socket Socket, Stream Stream)>();
        var points = new List<(int, long)>();
        var deadline = Stopwatch.StartNew();
        try
        {
            foreach (var step in steps)
            {
                while (held.Count < step)
                {
                    if (deadline.Elapsed > TimeSpan.FromSeconds(240))
                    {
                        throw new IOException($"idle: only {held.Count} connections opened in 240 s");
                    }
                    held.Add(path.Open());
                }
                // A round trip on the last one proves the whole chain is up before the reading.
                Thread.Sleep(settle);
                points.Add((step, Rss(pid)));
                if (atStep is not null)
                {
                    RunAtStep(atStep, step);
                }
            }
        }
        finally
        {
            foreach (var (socket, stream) in held)
            {
                stream.Dispose();
                socket.Dispose();
            }
        }
        return points;
    }

    static void RunAtStep(string command, int step)
    {
        using var process = Process.Start("/bin/sh", ["-c", $"{command} {step.ToString(CultureInfo.InvariantCulture)}"]);
        if (!process.WaitForExit(TimeSpan.FromSeconds(120)))
        {
            process.Kill();
            throw new IOException($"idle: --at-step command still running after 120 s: {command}");
        }
    }

    static long Rss(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
            }
        }
        throw new IOException($"no VmRSS for {pid}");
    }
}

static class Cpu
{
    // utime and stime are fields 14 and 15 of /proc/PID/stat, counted after the ')' that ends the name.
    public static double Seconds(int? pid, int clockTicks)
    {
        if (pid is null)
        {
            return 0;
        }
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / (double)clockTicks;
    }
}

static class Sink
{
    public static int Run()
    {
        var sink = Listen();
        var echo = Listen();
        Console.WriteLine($"sink {((IPEndPoint)sink.LocalEndPoint!).Port}");
        Console.WriteLine($"echo {((IPEndPoint)echo.LocalEndPoint!).Port}");
        Console.Out.Flush();
        // Sink connections are few and long: a thread each, blocking reads. Echo connections are many
        // and short: async.
        new Thread(() =>
        {
            while (true)
            {
                var s = sink.Accept();
                new Thread(() => Drain(s)) { IsBackground = true }.Start();
            }
        }) { IsBackground = true }.Start();
        _ = Task.Run(async () =>
        {
            while (true)
            {
                var s = await echo.AcceptAsync();
                _ = EchoAsync(s);
            }
        });
        // Ends when the script kills it, or after an hour in case nobody does.
        Thread.Sleep(TimeSpan.FromHours(1));
        return 0;
    }

    static Socket Listen()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1024);
        return listener;
    }

    // Reads 5 bytes; a leading TLS handshake record (the bench's ClientHello) is read whole and dropped,
    // anything else is kept at the start of header. Returns how many bytes of header are filled.
    static int SkipHello(Socket s, byte[] header)
    {
        for (var got = 0; got < 5;)
        {
            var n = s.Receive(header, got, 5 - got, SocketFlags.None);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }
            got += n;
        }
        if (header[0] != 0x16)
        {
            return 5;
        }
        var left = (header[3] << 8) | header[4];
        var scratch = new byte[left];
        for (var got = 0; got < left;)
        {
            var n = s.Receive(scratch, got, left - got, SocketFlags.None);
            if (n == 0)
            {
                throw new SocketException((int)SocketError.ConnectionReset);
            }
            got += n;
        }
        return 0;
    }

    static void Drain(Socket s)
    {
        using (s)
        {
            try
            {
                s.NoDelay = true;
                var buffer = new byte[256 * 1024];
                var header = new byte[8];
                var start = SkipHello(s, header);
                for (var got = start; got < 8;)
                {
                    var n = s.Receive(header, got, 8 - got, SocketFlags.None);
                    if (n == 0)
                    {
                        return;
                    }
                    got += n;
                }
                var left = BinaryPrimitives.ReadInt64BigEndian(header);
                if (left < 0)
                {
                    // A download: send that many bytes, then wait for the client to close.
                    Random.Shared.NextBytes(buffer);
                    for (left = -left; left > 0;)
                    {
                        var n = s.Send(buffer, 0, (int)Math.Min(left, buffer.Length), SocketFlags.None);
                        left -= n;
                    }
                    while (s.Receive(buffer) > 0)
                    {
                    }
                    return;
                }
                while (left > 0)
                {
                    var n = s.Receive(buffer, 0, (int)Math.Min(left, buffer.Length), SocketFlags.None);
                    if (n == 0)
                    {
                        Console.Error.WriteLine($"sink: closed with {left} bytes missing");
                        return;
                    }
                    left -= n;
                }
                s.Send([0x55]);
                // Wait for the sender to close first, so the TIME_WAIT stays on the sender's side.
                while (s.Receive(buffer) > 0)
                {
                }
            }
            catch (SocketException e)
            {
                Console.Error.WriteLine($"sink: {e.Message}");
            }
        }
    }

    static async Task EchoAsync(Socket s)
    {
        using (s)
        {
            try
            {
                s.NoDelay = true;
                var buffer = new byte[4096];
                int n;
                // A leading TLS handshake record (the bench's ClientHello) is dropped, not echoed.
                var have = 0;
                while (have < 5 && (n = await s.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None)) > 0)
                {
                    have += n;
                }
                var skip = have >= 5 && buffer[0] == 0x16 ? 5 + ((buffer[3] << 8) | buffer[4]) : 0;
                n = have;
                while (n > 0)
                {
                    var drop = Math.Min(skip, n);
                    skip -= drop;
                    if (n > drop)
                    {
                        await s.SendAsync(buffer.AsMemory(drop, n - drop), SocketFlags.None);
                    }
                    n = await s.ReceiveAsync(buffer, SocketFlags.None);
                }
            }
            catch (SocketException)
            {
                // A client that resets is its own business; the client side counts errors.
            }
        }
    }
}

/// <summary>Many CONNECTs to names at once, and setups to a literal beside them (bench/dns/run).</summary>
/// <summary>
/// A DNS server for bench/dns: answers A questions for names under answer.test with 127.0.0.1 (TTL 60) and AAAA
/// questions there with no record; never answers anything else, and sends no error either.
/// </summary>
static class SilentDns
{
    public static void Serve(Socket socket, TimeSpan lifetime)
    {
        var buffer = new byte[1500];
        var end = Stopwatch.StartNew();
        socket.ReceiveTimeout = 1000;
        EndPoint from = new IPEndPoint(IPAddress.Any, 0);
        while (end.Elapsed < lifetime)
        {
            int length;
            try
            {
                length = socket.ReceiveFrom(buffer, ref from);
            }
            catch (SocketException)
            {
                continue;
            }
            if (Reply(buffer.AsSpan(0, length)) is { } reply)
            {
                socket.SendTo(reply, from);
            }
        }
    }

    private static byte[]? Reply(ReadOnlySpan<byte> query)
    {
        var at = 12;
        var labels = new List<string>();
        while (at < query.Length && query[at] is > 0 and < 64 && at + 1 + query[at] <= query.Length)
        {
            labels.Add(Encoding.ASCII.GetString(query.Slice(at + 1, query[at])));
            at += 1 + query[at];
        }
        if (at + 5 > query.Length || query[at] != 0 || labels.Count < 2 || !string.Join('.', labels[^2..]).Equals("answer.test", StringComparison.OrdinalIgnoreCase))
        {
            return null;
        }
        var questionEnd = at + 5;
        var type = BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]);
        var reply = new List<byte>(query[..questionEnd].ToArray());
        reply[2] = 0x81;
        reply[3] = 0x80;
        reply[7] = (byte)(type == 1 ? 1 : 0);
        reply[8] = reply[9] = reply[10] = reply[11] = 0;
        if (type == 1)
        {
            reply.AddRange([0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
        }
        return [.. reply];
    }
}

static class Names
{
    public static int Run(IPEndPoint proxy, IPEndPoint target, int count, int probes, bool probeNames)
    {
        var inv = CultureInfo.InvariantCulture;
        var clock = Stopwatch.StartNew();
        var answers = new (string Key, double Seconds)?[count];
        var tasks = Enumerable.Range(0, count).Select(i => Task.Run(async () =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            try
            {
                await socket.ConnectAsync(proxy, cts.Token);
                var name = $"name{i}.silent.test:443";
                await socket.SendAsync(Encoding.ASCII.GetBytes($"CONNECT {name} HTTP/1.1\r\nHost: {name}\r\n\r\n"), cts.Token);
                var head = new byte[4096];
                var length = 0;
                while (head.AsSpan(0, length).IndexOf("\r\n\r\n"u8) < 0 && length < head.Length)
                {
                    var n = await socket.ReceiveAsync(head.AsMemory(length), cts.Token);
                    if (n == 0)
                    {
                        break;
                    }
                    length += n;
                }
                var text = Encoding.ASCII.GetString(head, 0, length);
                var status = text.Length > 12 ? text[9..12] : "closed";
                var error = text.Split("\r\n").FirstOrDefault(l => l.StartsWith("Proxy-Status:", StringComparison.OrdinalIgnoreCase)) is { } field
                    && field.IndexOf("error=", StringComparison.Ordinal) is var at and >= 0
                        ? new string(field[(at + 6)..].TakeWhile(c => c != ';').ToArray())
                        : "-";
                answers[i] = ($"{status} {error}", clock.Elapsed.TotalSeconds);
            }
            catch (OperationCanceledException)
            {
                // Unanswered after 120 s.
            }
        })).ToArray();

        // The literal probes start once the names are in flight.
        Thread.Sleep(1000);
        var probe = 0;
        var path = new PathOptions("plain", target, proxy, null, null, 100, null)
        {
            ConnectTarget = probeNames ? () => $"probe{probe++}.answer.test:{target.Port}" : null,
        };
        var (samples, errors, firstError) = Setup.Run(path, probes);
        Task.WaitAll(tasks);

        foreach (var group in answers.Where(a => a is not null).Select(a => a!.Value).GroupBy(a => a.Key).OrderBy(g => g.Key, StringComparer.Ordinal))
        {
            Console.WriteLine(string.Create(inv, $"answer {group.Key} count {group.Count()} first_s {group.Min(a => a.Seconds):F1} last_s {group.Max(a => a.Seconds):F1}"));
        }
        Console.WriteLine(string.Create(inv, $"unanswered {answers.Count(a => a is null)}"));
        samples.Sort();
        Console.WriteLine(samples.Count == 0
            ? $"probes p50_ms - max_ms - errors {errors} first_error {firstError}"
            : string.Create(inv, $"probes p50_ms {samples[samples.Count / 2] / 1000:F1} max_ms {samples[^1] / 1000:F1} errors {errors}"));
        return 0;
    }
}
