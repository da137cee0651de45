using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>How the HTTP proxy's tests feed a real socket and read a connection over it: in small pieces, as the pump reads.</summary>
internal static class PieceByPiece
{
    /// <summary>Writes <paramref name="text"/> (Latin-1) in <paramref name="pieceSize"/> pieces, then half-closes when <paramref name="close"/>.</summary>
    public static Task WriteAsync(Socket socket, string text, int pieceSize, bool close = true) => Task.Run(async () =>
    {
        var bytes = Encoding.Latin1.GetBytes(text);
        for (var at = 0; at < bytes.Length; at += pieceSize)
        {
            await socket.SendAsync(bytes.AsMemory(at, Math.Min(pieceSize, bytes.Length - at)));
        }
        if (close)
        {
            socket.Shutdown(SocketShutdown.Send);
        }
    });

    /// <summary>
    /// Reads <paramref name="connection"/> until it ends, into <paramref name="read"/> (Latin-1), as the pump does: a zero-byte
    /// read first, then a small read. What it throws goes to the caller, with what came before it in <paramref name="read"/>.
    /// </summary>
    public static async Task ReadToEndAsync(IDuplexConnection connection, StringBuilder read)
    {
        var buffer = new byte[7];
        while (true)
        {
            await connection.ReadAsync(Memory<byte>.Empty, default).AsTask().WaitAsync(Timeouts.Default);
            var n = await connection.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default);
            if (n == 0)
            {
                return;
            }
            read.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }
    }
}
