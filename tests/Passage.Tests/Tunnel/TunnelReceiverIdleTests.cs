using System.Net;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// An application that never reads its answer: once the answer's bytes have waited <c>system.idleTimeout</c> to be taken,
/// the answer is cut off, rather than holding the link's stream and the backend's connection (one of a capped number) for good.
/// </summary>
public sealed class TunnelReceiverIdleTests
{
    [Fact]
    public async Task An_answer_the_application_never_reads_is_cut_off_and_the_backends_connection_closed()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var backendEnded = Task.Run(() => ServeEndlesslyAsync(listener));
        // The server end's own clock off: it is the client end, facing the application, that gives up.
        await using var ends = await InProcessEnds.StartAsync(((IPEndPoint)listener.LocalEndpoint).Port, clientEnd: true,
            idleTimeout: TimeSpan.FromSeconds(1), serverIdleTimeout: Timeout.InfiniteTimeSpan);

        using var application = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await application.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ends.HttpPort));
        await application.SendAsync("GET /endless HTTP/1.1\r\nHost: app.test\r\n\r\n"u8.ToArray());

        // Never read: the backend, writing as long as it can, finds its connection closed.
        await backendEnded.WaitAsync(Timeouts.Default);
    }

    /// <summary>Answers the one request with a body that never ends; returns when a write fails.</summary>
    private static async Task ServeEndlesslyAsync(TcpListener listener)
    {
        using var socket = await listener.AcceptSocketAsync();
        using var reader = new Http1Reader(new NetworkStream(socket, ownsSocket: false));
        while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
        {
        }
        await socket.SendAsync("HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n"u8.ToArray());
        var chunk = new byte[64 * 1024];
        try
        {
            while (true)
            {
                await socket.SendAsync(chunk);
            }
        }
        catch (SocketException)
        {
        }
    }
}
