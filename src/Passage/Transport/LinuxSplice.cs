using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Passage.Transport;

/// <summary>
/// The libc calls behind the zero-copy path of the <see cref="BytePump"/>: splice(2), pipe2(2),
/// fcntl(2), read(2), close(2). Linux only; callers check <see cref="IsAvailable"/> first.
/// </summary>
/// <remarks>Constants are the Linux values, the same on x86-64 and arm64 (asm-generic).</remarks>
internal static partial class LinuxSplice
{
    // splice(2) flags.
    public const uint SPLICE_F_MOVE = 1;
    public const uint SPLICE_F_NONBLOCK = 2;

    // open(2)/fcntl(2) flags and commands.
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;
    public const int F_GETFL = 3;
    public const int F_SETPIPE_SZ = 1031;
    public const int F_GETPIPE_SZ = 1032;

    // errno values.
    public const int EPERM = 1;
    public const int EINTR = 4;
    public const int EBADF = 9;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EINVAL = 22;
    public const int ENFILE = 23;
    public const int EMFILE = 24;
    public const int EPIPE = 32;
    public const int ENOSYS = 38;
    public const int ENETDOWN = 100;
    public const int ENETUNREACH = 101;
    public const int ENETRESET = 102;
    public const int ECONNABORTED = 103;
    public const int ECONNRESET = 104;
    public const int ENOBUFS = 105;
    public const int ENOTCONN = 107;
    public const int ETIMEDOUT = 110;
    public const int ECONNREFUSED = 111;
    public const int EHOSTDOWN = 112;
    public const int EHOSTUNREACH = 113;
    public const int EINPROGRESS = 115;

    private static int s_unsupported;

    /// <summary>
    /// True on Linux until splice(2) has answered ENOSYS (a kernel without it); from then on every pump
    /// takes the copy path.
    /// </summary>
    public static bool IsAvailable => OperatingSystem.IsLinux() && Volatile.Read(ref s_unsupported) == 0;

    /// <summary>True for the answers that mean "splice cannot do this here" rather than a network failure.</summary>
    public static bool MeansUnsupported(int errno) => errno is EINVAL or ENOSYS;

    /// <summary>
    /// Takes note of a refusal (<see cref="MeansUnsupported"/>). ENOSYS is the kernel's and turns the
    /// zero-copy path off for the rest of the process; EINVAL is about these two descriptors (a
    /// destination opened for appending, a file system or socket family without splice), so only the
    /// direction that met it falls back, and the next connection tries again.
    /// </summary>
    public static void NoteRefusal(int errno)
    {
        if (errno == ENOSYS)
        {
            Volatile.Write(ref s_unsupported, 1);
        }
    }

    /// <summary>
    /// The exception the runtime's own socket calls throw for <paramref name="errno"/>, so that a
    /// failure reads the same whichever path met it (a send to a reset peer is ConnectionReset,
    /// then EPIPE, which the runtime reports as <see cref="SocketError.Shutdown"/>).
    /// </summary>
    public static SocketException ToSocketException(int errno) => new((int)(errno switch
    {
        ECONNRESET => SocketError.ConnectionReset,
        ECONNREFUSED => SocketError.ConnectionRefused,
        EPIPE => SocketError.Shutdown,
        ENOTCONN => SocketError.NotConnected,
        ETIMEDOUT => SocketError.TimedOut,
        ECONNABORTED => SocketError.ConnectionAborted,
        ENETRESET => SocketError.NetworkReset,
        ENETDOWN => SocketError.NetworkDown,
        ENETUNREACH => SocketError.NetworkUnreachable,
        EHOSTDOWN => SocketError.HostDown,
        EHOSTUNREACH => SocketError.HostUnreachable,
        ENOBUFS or ENOMEM => SocketError.NoBufferSpaceAvailable,
        EBADF => SocketError.OperationAborted,
        EINTR => SocketError.Interrupted,
        _ => SocketError.SocketError,
    }));

    [LibraryImport("libc", EntryPoint = "splice", SetLastError = true)]
    public static unsafe partial nint Splice(int fdIn, long* offIn, int fdOut, long* offOut, nuint length, uint flags);

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    public static unsafe partial int Pipe2(int* fds, int flags);

    // fcntl is variadic in C; on the Linux ABIs .NET runs on an int third argument is passed as for a
    // fixed-argument call.
    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport("libc", EntryPoint = "read", SetLastError = true)]
    public static unsafe partial nint Read(int fd, byte* buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
