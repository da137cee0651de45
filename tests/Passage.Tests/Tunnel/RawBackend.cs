using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A backend that answers each request with bytes written by hand, chosen by its path, then closes the connection: for
/// answers no HTTP server library would send (lengths that disagree, a 101 nobody asked for, a 204 with a body).
/// </summary>
internal sealed class RawBackend : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly IReadOnlyDictionary<string, string> _answers;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _accepting;

    /// <param name="answers">Path to the answer's bytes (Latin-1); other paths get <c>200 ok</c>.</param>
    public RawBackend(IReadOnlyDictionary<string, string> answers)
    {
        _answers = answers;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = AnswerAsync(socket);
        }
    }

    private async Task AnswerAsync(Socket socket)
    {
        using (socket)
        {
            try
            {
                using var reader = new Http1Reader(new NetworkStream(socket, ownsSocket: false));
                var requestLine = await reader.ReadLineAsync(8192, _stop.Token) ?? "";
                while (await reader.ReadLineAsync(8192, _stop.Token) is { Length: > 0 })
                {
                }
                var path = requestLine.Split(' ') is [_, var target, ..] ? target : "/";
                var answer = _answers.TryGetValue(path, out var scripted) ? scripted : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                await socket.SendAsync(Encoding.Latin1.GetBytes(answer), _stop.Token);
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or InvalidDataException)
            {
                // The other side gave up on the exchange; nothing to answer.
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
