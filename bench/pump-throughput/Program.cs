using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Passage.Transport;

// Moves a fixed amount one way over loopback: sender → [pump] → sink, and sender → sink directly,
// each a few times, and prints Gbit/s. Everything in this one process, ports from the OS.
var gib = args.Length > 0 ? double.Parse(args[0], System.Globalization.CultureInfo.InvariantCulture) : 4;
var runs = args.Length > 1 ? int.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 3;
var total = (long)(gib * 1024 * 1024 * 1024);
var copiedCounter = typeof(BytePump).Assembly.GetType("Passage.Transport.SplicePipe")!.GetProperty("CopiedOutBytes")!;

var cases = new (string Name, PumpOptions? Options)[]
{
    ("direct", null),
    ("copy 64K", new PumpOptions { ZeroCopy = false, IdleTimeout = Timeout.InfiniteTimeSpan }),
    ("splice 64K", new PumpOptions { IdleTimeout = Timeout.InfiniteTimeSpan, PipeSize = 64 * 1024 }),
    ("splice 256K", new PumpOptions { IdleTimeout = Timeout.InfiniteTimeSpan, PipeSize = 256 * 1024 }),
    ("splice 1M", new PumpOptions { IdleTimeout = Timeout.InfiniteTimeSpan, PipeSize = 1024 * 1024 }),
};
Console.WriteLine($"{Environment.ProcessorCount} cores, {gib} GiB per run, {runs} runs");
foreach (var (name, options) in cases)
{
    var rates = new List<double>();
    var copiedBefore = (long)copiedCounter.GetValue(null)!;
    for (var i = 0; i < runs; i++)
    {
        rates.Add(await RunAsync(options, total));
    }
    var copied = (long)copiedCounter.GetValue(null)! - copiedBefore;
    var note = name.StartsWith("splice", StringComparison.Ordinal) ? $"  copied to wait for writability: {100.0 * copied / (total * runs):F2}%" : "";
    Console.WriteLine($"{name,-12} {string.Join("  ", rates.Select(r => r.ToString("F2", System.Globalization.CultureInfo.InvariantCulture)))} Gbit/s  (median {rates.Order().ElementAt(runs / 2):F2}){note}");
}

static async Task<double> RunAsync(PumpOptions? options, long total)
{
    var (sender, relayIn) = await PairAsync();
    var (relayOut, sink) = options is null ? (sender, relayIn) : await PairAsync();
    if (options is null)
    {
        sink = relayIn;
    }
    var stopwatch = Stopwatch.StartNew();
    Task<PumpResult>? pump = options is null ? null : BytePump.RunAsync(new SocketConnection(relayIn), new SocketConnection(relayOut), options);
    var drain = Task.Run(async () =>
    {
        var buffer = new byte[256 * 1024];
        long received = 0;
        int n;
        while ((n = await sink.ReceiveAsync(buffer, SocketFlags.None)) > 0)
        {
            received += n;
        }
        return received;
    });
    var send = Task.Run(async () =>
    {
        var buffer = new byte[256 * 1024];
        Random.Shared.NextBytes(buffer);
        for (var left = total; left > 0;)
        {
            var n = await sender.SendAsync(buffer.AsMemory(0, (int)Math.Min(left, buffer.Length)), SocketFlags.None);
            left -= n;
        }
        sender.Shutdown(SocketShutdown.Send);
    });
    await send;
    if (pump is not null)
    {
        // The pump passes the end on; the sink answers with its own end so the run completes.
        var received = await drain;
        sink.Shutdown(SocketShutdown.Send);
        var result = await pump;
        if (result.End != PumpEnd.Completed || received != total)
        {
            throw new InvalidOperationException($"{result.End}: {received} of {total}");
        }
    }
    else if (await drain != total)
    {
        throw new InvalidOperationException("short");
    }
    var seconds = stopwatch.Elapsed.TotalSeconds;
    foreach (var socket in new[] { sender, relayIn, relayOut, sink }.Distinct())
    {
        socket.Dispose();
    }
    return total * 8 / seconds / 1e9;
}

static async Task<(Socket, Socket)> PairAsync()
{
    using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
    listener.Listen(1);
    var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
    var accept = listener.AcceptAsync();
    await client.ConnectAsync(listener.LocalEndPoint!);
    var accepted = await accept;
    accepted.NoDelay = true;
    return (client, accepted);
}
