using Microsoft.AspNetCore.Connections;

namespace Passage.Relay.Connect;

/// <summary>
/// The drain deadline of one HTTP/2 connection handed to Kestrel, set on its features, where
/// <see cref="Http2ConnectHandler"/> finds it for each stream: when it is reached, the connection's dials are given up
/// and answered, and its tunnels reset, each on its own stream; once every request has been answered, Kestrel is told
/// to end the connection, which it does as at a client's close: a last GOAWAY after what it still had to write.
/// </summary>
/// <remarks>
/// Aborting the connection at the deadline instead (as before) closed it under every stream at once: a request still
/// dialing its destination got no answer at all, and a tunnel no RST_STREAM, where the HTTP/1.1 door answers the one 503.
/// Kestrel, which sent its first GOAWAY when the stop began, would close the connection once its last stream ended, but
/// only when something wakes its reading of the connection, and while it stops nothing but a frame from the client does.
/// Never disposed: a stream's handler may still ask for <see cref="Token"/> after Kestrel has let go of the connection
/// (under a rapid reset, seen), and a disposed source throws there. It holds no timer, so nothing is lost.
/// </remarks>
internal sealed class Http2DrainDeadline(ConnectionContext connection)
{
    private readonly CancellationTokenSource _reached = new();
    private int _requests;
    private volatile bool _isReached;

    /// <summary>Cancelled when the deadline is reached.</summary>
    public CancellationToken Token => _reached.Token;

    /// <summary>
    /// A request is being served on the connection: counted until Kestrel has sent its response (or reset), after the
    /// handler returns.
    /// </summary>
    public void Serving(Microsoft.AspNetCore.Http.HttpResponse response)
    {
        Interlocked.Increment(ref _requests);
        response.OnCompleted(static state =>
        {
            var drain = (Http2DrainDeadline)state;
            if (Interlocked.Decrement(ref drain._requests) == 0 && drain._isReached)
            {
                drain.EndConnection();
            }
            return Task.CompletedTask;
        }, this);
    }

    /// <summary>The deadline is reached: every dial and tunnel of the connection is ended, then the connection.</summary>
    public void Reach()
    {
        _isReached = true;
        _reached.Cancel();
        if (Volatile.Read(ref _requests) == 0)
        {
            EndConnection();
        }
    }

    /// <summary>
    /// Ends Kestrel's reading of the connection, as the client's close would: Kestrel then sends its last GOAWAY, writes
    /// what it has left and closes the connection.
    /// </summary>
    private void EndConnection()
    {
        try
        {
            connection.Transport.Input.CancelPendingRead();
        }
        catch (ObjectDisposedException)
        {
            // The connection has closed already.
        }
    }
}
