using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Passage.Transport;

/// <summary>
/// A socket's descriptor number, held for one system call: the socket's handle is referenced for the
/// lease's length, so a concurrent close (an abort from another thread) waits for it to end, and
/// the number is never used after it could have been given to another file.
/// </summary>
/// <example><code>
/// try { using var socketFd = new SocketDescriptor(socket); return Call(socketFd.Fd); }
/// catch (ObjectDisposedException) { /* closed already */ }
/// </code></example>
internal readonly ref struct SocketDescriptor
{
    private readonly SafeHandle _handle;

    /// <summary>References <paramref name="socket"/>'s handle; throws <see cref="ObjectDisposedException"/> once it is closed.</summary>
    public SocketDescriptor(Socket socket)
    {
        var handle = socket.SafeHandle;
        var referenced = false;
        handle.DangerousAddRef(ref referenced);
        _handle = handle;
        Fd = (int)handle.DangerousGetHandle();
    }

    /// <summary>The descriptor number, valid until <see cref="Dispose"/>.</summary>
    public int Fd { get; }

    /// <summary>Lets the handle go (a close that waited on it proceeds).</summary>
    public void Dispose() => _handle?.DangerousRelease();
}
