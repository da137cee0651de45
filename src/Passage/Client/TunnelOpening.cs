using System.Buffers;
using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// The opening of a tunnel for an application that waits for its answer (a SOCKS5 reply, a 200 to its CONNECT), watching
/// the application meanwhile: one that leaves ends the opening, and the relay closes what it opened for it. It used to go
/// on until the relay answered, up to its connect timeout, holding the connection and the relay's dial for an application
/// long gone, and counting a failed tunnel for it.
/// </summary>
internal static class TunnelOpening
{
    /// <summary>How much of what the application sends while its tunnel opens is read meanwhile: 4 KiB, a TLS ClientHello.</summary>
    private const int SentWhileOpening = 4096;

    /// <summary>
    /// Opens a tunnel to <paramref name="host"/>:<paramref name="port"/> for <paramref name="app"/>, which sent
    /// <paramref name="early"/> behind its request: the tunnel, or the relay's failure, or neither when the application
    /// left first; and what it sent behind its request, <paramref name="early"/> and what it sent meanwhile, for the tunnel
    /// to carry first. The application's connection is not read from once this returns but by the caller.
    /// </summary>
    public static async Task<(Stream? Tunnel, PassageTunnelException? Failure, byte[] Early)> OpenAsync(
        PassageClient client, string host, int port, IDuplexConnection app, byte[] early, CancellationToken closeAll)
    {
        using var left = CancellationTokenSource.CreateLinkedTokenSource(closeAll);
        using var opened = new CancellationTokenSource();
        Stream? tunnel = null;
        PassageTunnelException? failure = null;
        var sent = ArrayPool<byte>.Shared.Rent(SentWhileOpening);
        var watch = WatchAsync(app, sent, early.Length > 0, left, opened.Token);
        try
        {
            tunnel = await client.ConnectAsync(host, port, left.Token).ConfigureAwait(false);
        }
        catch (PassageTunnelException e)
        {
            failure = e;
        }
        catch (OperationCanceledException) when (left.IsCancellationRequested && !closeAll.IsCancellationRequested)
        {
            // The application ended its side (see WatchAsync): no tunnel, and no refusal counted.
        }
        finally
        {
            // The watch is over before anything else reads the application's connection, or its buffer goes back.
            await opened.CancelAsync().ConfigureAwait(false);
            if (await watch.ConfigureAwait(false) is > 0 and var read)
            {
                early = [.. early, .. sent.AsSpan(0, read)];
            }
            ArrayPool<byte>.Shared.Return(sent);
        }
        return (tunnel, failure, early);
    }

    /// <summary>
    /// While the tunnel opens, reads what the application sends into <paramref name="sent"/> (bytes it may send before its
    /// answer, which go through the tunnel first), to see whether it leaves: a reset, or an end of stream with nothing sent
    /// behind the request, cancels <paramref name="left"/>, and so the tunnel's opening. An end of stream cannot be told
    /// from a half-close: behind bytes to deliver (<paramref name="sentBefore"/>, or some read here) it is taken for one,
    /// and the tunnel opens for them (the end stays for the pump to read); with none, for a leaving. Ends at that, when
    /// <paramref name="sent"/> is full (the rest waits in the socket, and a leaving is seen once the tunnel is open), or
    /// when <paramref name="opened"/> is cancelled: returns the bytes read.
    /// </summary>
    private static async Task<int> WatchAsync(
        IDuplexConnection app, byte[] sent, bool sentBefore, CancellationTokenSource left, CancellationToken opened)
    {
        var filled = 0;
        try
        {
            while (filled < sent.Length)
            {
                var read = await app.ReadAsync(sent.AsMemory(filled), opened).ConfigureAwait(false);
                if (read == 0)
                {
                    if (!sentBefore && filled == 0)
                    {
                        await left.CancelAsync().ConfigureAwait(false);
                    }
                    break;
                }
                filled += read;
            }
        }
        catch (OperationCanceledException) when (opened.IsCancellationRequested)
        {
            // The tunnel opened, or failed to: the caller reads on from here.
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            await left.CancelAsync().ConfigureAwait(false);
        }
        return filled;
    }
}
