using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Relay;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>A <see cref="PassthroughRelay"/> in this process on 127.0.0.1:0, with its counters collected.</summary>
internal sealed class RelayHarness : IAsyncDisposable
{
    private readonly MetricsRecorder _recorder;

    private RelayHarness(PassthroughRelay relay, RelayMetrics metrics)
    {
        Relay = relay;
        Metrics = metrics;
        _recorder = new MetricsRecorder(metrics.Meter);
    }

    public PassthroughRelay Relay { get; }

    public RelayMetrics Metrics { get; }

    public int Port => Relay.LocalEndpoints[0].Port;

    /// <summary>The sum of a counter, by name and tag values joined with '/': "passage.relay.connections.refused/no_route".</summary>
    public long Counter(string key) => _recorder[key];

    /// <summary>The sum of a counter over all its tags: "passage.relay.connections.closed", however they ended.</summary>
    public long Total(string instrument) => _recorder.Total(instrument);

    public static RelayHarness Start(
        PassthroughOptions? options = null,
        RelayLimits? limits = null,
        bool allowPrivate = true,
        IReadOnlyDictionary<string, IPAddress[]>? map = null,
        TimeProvider? time = null,
        ResolverConf? resolverConf = null,
        IEnumerable<IPNetwork>? allowNetworks = null,
        ILoggerFactory? loggerFactory = null)
    {
        options ??= new PassthroughOptions();
        if (options.Endpoints.Count == 0)
        {
            options = options with { Endpoints = [new IPEndPoint(IPAddress.Loopback, 0)] };
        }
        var metrics = new RelayMetrics();
        var resolver = new DestinationResolver(new AddressPolicy(allowPrivate, allowNetworks ?? []), map, dns: resolverConf);
        var relay = new PassthroughRelay(options, limits ?? new RelayLimits(), resolver, loggerFactory, metrics, time);
        var harness = new RelayHarness(relay, metrics);
        relay.Start();
        return harness;
    }

    /// <summary>A client connected to the relay.</summary>
    public async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, Port)).WaitAsync(Timeouts.Default);
        return socket;
    }

    /// <summary>Waits until a condition on the counters holds (they are updated as connections end).</summary>
    public async Task WaitForAsync(Func<RelayHarness, bool> condition)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (!condition(this))
        {
            await Task.Delay(10, cts.Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        _recorder.Dispose();
        Metrics.Dispose();
    }
}
