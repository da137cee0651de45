using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>An <see cref="IDuplexConnection"/> over a connected plain socket. Owns the socket.</summary>
public sealed class SocketConnection : IDuplexConnection
{
    private int _writesCompleted;
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
    public async ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
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
