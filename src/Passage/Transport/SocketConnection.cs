using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>An <see cref="IDuplexConnection"/> over a connected plain socket. Owns the socket.</summary>
public sealed class SocketConnection : IDuplexConnection
{
    private int _writesCompleted;
    private int _nonBlocking;
    private int _disposed;

    /// <summary>Wraps <paramref name="socket"/>, which must be connected; disposing this disposes it.</summary>
    public SocketConnection(Socket socket)
    {
        ArgumentNullException.ThrowIfNull(socket);
        Socket = socket;
    }

    /// <inheritdoc />
    public Socket Socket { get; }

    Socket? IDuplexConnection.Socket => Socket;

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        Socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    /// <inheritdoc />
    /// <remarks>
    /// What the send buffer takes at once is sent right here, without the runtime's async send: a
    /// socket keeps the event args of its first async send (about 360 bytes, and the last buffer
    /// sent) for the rest of its life, which an idle relayed connection would hold for nothing.
    /// Only a full send buffer waits asynchronously. For this the socket is put in non-blocking
    /// mode; everything this class does with it is asynchronous anyway.
    /// </remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (data.IsEmpty || cancellationToken.IsCancellationRequested)
        {
            return SendAsync(data, cancellationToken);
        }
        if (Interlocked.Exchange(ref _nonBlocking, 1) == 0)
        {
            Socket.Blocking = false;
        }
        var sent = Socket.Send(data.Span, SocketFlags.None, out var error);
        if (error == SocketError.WouldBlock)
        {
            return SendAsync(data, cancellationToken);
        }
        if (error != SocketError.Success)
        {
            return ValueTask.FromException(new SocketException((int)error));
        }
        return sent == data.Length ? ValueTask.CompletedTask : SendAsync(data[sent..], cancellationToken);
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        // Socket.SendAsync on a stream socket completes only once every byte is queued.
        while (!data.IsEmpty)
        {
            var sent = await Socket.SendAsync(data, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            data = data[sent..];
        }
    }

    /// <inheritdoc />
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _writesCompleted, 1) == 0)
        {
            Socket.Shutdown(SocketShutdown.Send);
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public void Abort()
    {
        if (Volatile.Read(ref _disposed) != 0)
        {
            return;
        }
        SocketReset.Close(Socket);
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Socket.Dispose();
        }
        return ValueTask.CompletedTask;
    }
}
