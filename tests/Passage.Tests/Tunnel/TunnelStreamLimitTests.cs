using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// <c>transport.maxConcurrentHttpStreams</c> is how many requests may be in flight at once over the session: the session
/// request the server end holds open is not one of them.
/// </summary>
public sealed class TunnelStreamLimitTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task As_many_requests_as_maxConcurrentHttpStreams_are_in_flight_at_once(int limit)
    {
        // The backend answers none until all of them have come: with fewer streams than that, the tunnel would wait forever.
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var backend = HoldUntilAllCameAsync(listener, limit);
        using var directory = new TemporaryDirectory();
        var serverKey = Path.Combine(directory.Path, "server.key");
        var clientKey = Path.Combine(directory.Path, "client.key");
        using var serverIdentity = NodeIdentity.LoadOrCreate(serverKey, null, out _);
        using var clientIdentity = NodeIdentity.LoadOrCreate(clientKey, null, out _);
        await using var server = await TunnelServer.StartAsync(new TunnelOptions
        {
            Mode = TunnelMode.Server,
            Peer = clientIdentity.NodeId,
            KeyFile = serverKey,
            BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
            HttpConnectAddress = new HostPort("127.0.0.1", ((IPEndPoint)listener.LocalEndpoint).Port),
            MaxConcurrentHttpStreams = limit,
        }, NullLoggerFactory.Instance);
        await using var client = await TunnelClient.StartAsync(new TunnelOptions
        {
            Mode = TunnelMode.Client,
            Peer = serverIdentity.NodeId,
            KeyFile = clientKey,
            ConnectAddress = new HostPort("127.0.0.1", server.LocalEndpoint.Port),
            HttpBindAddress = new IPEndPoint(IPAddress.Loopback, 0),
        }, NullLoggerFactory.Instance);
        await client.FirstAttempt.WaitAsync(Timeouts.Default);
        Assert.Equal(TunnelPhase.Up, client.Status.Phase);

        using var http = new HttpClient { Timeout = Timeout.InfiniteTimeSpan };
        var requests = Enumerable.Range(0, limit).Select(i => http.GetStringAsync($"http://127.0.0.1:{client.LocalEndpoint.Port}/{i}")).ToArray();
        var came = await backend.WaitAsync(Timeouts.Default);
        Assert.Equal(limit, came);
        var answers = await Task.WhenAll(requests).WaitAsync(Timeouts.Default);
        Assert.All(answers, answer => Assert.Equal("ok", answer));
    }

    /// <summary>Takes <paramref name="count"/> requests, each on its own connection, then answers them all; returns how many came.</summary>
    private static async Task<int> HoldUntilAllCameAsync(TcpListener listener, int count)
    {
        var sockets = new List<Socket>();
        try
        {
            while (sockets.Count < count)
            {
                var socket = await listener.AcceptSocketAsync();
                sockets.Add(socket);
                using var reader = new Http1Reader(new NetworkStream(socket, ownsSocket: false));
                while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
                {
                }
            }
            foreach (var socket in sockets)
            {
                await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"));
                socket.Shutdown(SocketShutdown.Both);
            }
            return sockets.Count;
        }
        finally
        {
            foreach (var socket in sockets)
            {
                socket.Dispose();
            }
        }
    }
}
