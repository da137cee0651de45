using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// <c>system.backendTimeout</c> restarts with every byte the backend moves, interim (1xx) answers included: a backend that
/// says <c>102 Processing</c> while it works on a long request is moving bytes, and was cut with 504 "the backend moved no
/// byte" all the same, as the HTTP client reads those answers and passes over them without a word.
/// </summary>
public sealed class TunnelInterimAnswerTests
{
    private static readonly TimeSpan BackendTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Interim answers 200 ms apart, for twice the timeout in all (fewer than InterimAnswers.Max), then the answer.</summary>
    private const int Interims = 20;

    [Theory]
    [InlineData("GET /work HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")]
    // A request with trailers goes on a connection of its own, read by the tunnel's own HTTP/1.1 code.
    [InlineData("POST /work HTTP/1.1\r\nHost: app.test\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")]
    public async Task A_backend_that_sends_interim_answers_while_it_works_is_not_cut(string request)
    {
        await using var backend = new ProcessingBackend();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, backendTimeout: BackendTimeout);

        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, request, readToEnd: true);

        Assert.StartsWith("HTTP/1.1 200 ", answer, StringComparison.Ordinal);
        Assert.EndsWith("\r\n\r\ndone", answer, StringComparison.Ordinal);
        Assert.Equal(Interims, backend.InterimsSent);
    }

    /// <summary>Reads a request (its head, then its chunked body when it has one), sends <see cref="Interims"/> 102s, then 200 "done".</summary>
    private sealed class ProcessingBackend : IAsyncDisposable
    {
        private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
        private readonly Task _serving;
        private int _interims;

        public ProcessingBackend()
        {
            _listener.Start();
            _serving = ServeAsync();
        }

        public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

        public int InterimsSent => Volatile.Read(ref _interims);

        private async Task ServeAsync()
        {
            using var socket = await _listener.AcceptSocketAsync();
            using var reader = new Http1Reader(new NetworkStream(socket, ownsSocket: false));
            var chunked = false;
            while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 } line)
            {
                chunked |= line.StartsWith("Transfer-Encoding:", StringComparison.OrdinalIgnoreCase);
            }
            // A chunked body: up to the empty line that ends the trailer section, after the last chunk.
            for (var last = false; chunked && await reader.ReadLineAsync(8192, CancellationToken.None) is { } line;)
            {
                if (last && line.Length == 0)
                {
                    break;
                }
                last |= line == "0";
            }
            for (var i = 0; i < Interims; i++)
            {
                await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 102 Processing\r\n\r\n"));
                Interlocked.Increment(ref _interims);
                await Task.Delay(BackendTimeout * 2 / Interims);
            }
            await socket.SendAsync(Encoding.ASCII.GetBytes("HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone"));
            socket.Shutdown(SocketShutdown.Send);
            while (await socket.ReceiveAsync(new byte[1024]) > 0)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Stop();
            try
            {
                await _serving.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or TimeoutException or IOException)
            {
            }
        }
    }
}
