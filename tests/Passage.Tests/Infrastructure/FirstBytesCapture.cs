using System.Net;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// Captures what a real client (SslStream, curl, HttpClient) sends first: the client is pointed at a
/// one-connection listener on 127.0.0.1:0, <c>read</c> takes what it needs from the accepted socket,
/// and the connection is closed. The client then fails; only its ending matters.
/// </summary>
internal static class FirstBytesCapture
{
    public static async Task<byte[]> CaptureAsync(
        Func<int, CancellationToken, Task> client, Func<Socket, CancellationToken, Task<byte[]>> read, TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var clientTask = Task.Run(() => client(port, cts.Token));
        byte[] captured;
        using (var socket = await listener.AcceptSocketAsync(cts.Token))
        {
            // One connection only: a client that retries after the close is refused instead of left waiting.
            listener.Stop();
            captured = await read(socket, cts.Token);
        }

        cts.CancelAfter(TimeSpan.FromSeconds(3));
        try
        {
            await clientTask.WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception e) when (e is not TimeoutException)
        {
            // The client's own failure after the close is expected.
        }
        return captured;
    }
}
