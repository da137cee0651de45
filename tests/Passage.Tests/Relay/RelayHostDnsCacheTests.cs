using System.Net;
using System.Net.Sockets;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Relay;

/// <summary>The relay's DNS cache settings reach the resolver it runs, through the system resolver ("localhost").</summary>
public sealed class RelayHostDnsCacheTests
{
    [Theory]
    [InlineData(30_000, 1, 2)]
    [InlineData(0, 3, 0)]
    public async Task Connections_to_one_name_share_its_answer_unless_the_cache_is_off(int maxAgeMs, int misses, int hits)
    {
        using var directory = new TemporaryDirectory();
        await using var echo = new EchoServer();
        using var metrics = new RelayMetrics();
        using var recorder = new MetricsRecorder(metrics.Meter);
        var options = new RelayOptions
        {
            Connect = new ConnectOptions
            {
                Endpoints = [new IPEndPoint(IPAddress.Loopback, 0)],
                PlainEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)],
                KeyFile = Path.Combine(directory.Path, "relay.pem"),
                Allow = ["*:*"],
            },
            Destinations = new DestinationOptions
            {
                AllowPrivate = true,
                DnsCache = new DnsCacheOptions { MaxAge = TimeSpan.FromMilliseconds(maxAgeMs) },
            },
        };

        // A clock that never moves: a kept answer cannot age out between the connections.
        await using (var host = await RelayHost.StartAsync(options, metrics: metrics, timeProvider: new ManualTimeProvider()))
        {
            for (var i = 0; i < 3; i++)
            {
                using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(host.Connect!.LocalPlainEndpoints[0]).WaitAsync(Timeouts.Default);
                await Loopback.SendAllAsync(socket, System.Text.Encoding.ASCII.GetBytes($"CONNECT localhost:{echo.Port} HTTP/1.1\r\nHost: localhost:{echo.Port}\r\n\r\n"));
                Assert.StartsWith("HTTP/1.1 200", await ConnectHarness.ReadHeadAsync(socket));
                socket.Shutdown(SocketShutdown.Send);
                await Loopback.ReadToEndAsync(socket);
            }
        }

        Assert.Equal(misses, recorder["passage.relay.dns.answers/miss"]);
        Assert.Equal(hits, recorder["passage.relay.dns.answers/hit"]);
    }
}
