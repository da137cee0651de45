using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Passage.Configuration;

/// <summary>What a path names, as stat(2) tells it.</summary>
internal enum FileKind
{
    /// <summary>Nothing: the path, or a directory on the way, does not exist.</summary>
    Missing,

    /// <summary>A regular file, the only kind read as settings, keys, tokens or system files.</summary>
    Regular,

    /// <summary>A directory.</summary>
    Directory,

    /// <summary>A FIFO (named pipe): opening it waits for a writer, reading it for what the writer sends.</summary>
    Fifo,

    /// <summary>A character device (<c>/dev/zero</c>, a terminal): it may never end.</summary>
    CharacterDevice,

    /// <summary>A block device.</summary>
    BlockDevice,

    /// <summary>A Unix socket.</summary>
    Socket,

    /// <summary>Something stat(2) could not look at (a directory on the way that may not be searched, a loop of links); opening it says why.</summary>
    Unknown,
}

/// <summary>
/// What stat(2) says of a file, through symbolic links (the file a link leads to, whose status changes when new content
/// arrives, where the link's own never does: a Kubernetes secret or config map, resolv.conf under systemd-resolved).
/// Two statuses are equal only when the file is the same one (device and inode) with the same length, time of last
/// write and time of last status change: a file renamed over another has an inode of its own, even when it keeps
/// its length and time of last write (<c>cp -p</c>, <c>rsync -t</c>).
/// </summary>
/// <param name="Kind">What the path names.</param>
/// <param name="Length">Its length in bytes.</param>
/// <param name="LastWriteUtc">When it was last written.</param>
/// <param name="ChangeUtc">When its status last changed (ctime); the default where stat(2) is not available.</param>
/// <param name="Device">The device it is on; 0 where stat(2) is not available.</param>
/// <param name="Inode">Its inode number; 0 where stat(2) is not available.</param>
internal readonly record struct FileStatus(FileKind Kind, long Length, DateTime LastWriteUtc, DateTime ChangeUtc, ulong Device, ulong Inode)
{
    /// <summary>Whether the path names anything.</summary>
    public bool Exists => Kind != FileKind.Missing;

    /// <summary>Its permission bits (<c>0644</c>, with set-user-ID, set-group-ID and sticky); null where stat(2) is not available.</summary>
    public UnixFileMode? Permissions { get; init; }

    /// <summary>The user ID of its owner; null where stat(2) is not available.</summary>
    public uint? Owner { get; init; }

    /// <summary>The ID of its group; null where stat(2) is not available.</summary>
    public uint? Group { get; init; }
}

/// <summary>
/// Files Passage reads at start or again on change (settings, keys, tokens, hosts and resolv.conf): looked at with
/// stat(2) (statx(2) on Linux; elsewhere, or where it is refused, what <see cref="FileInfo"/> tells) and read only when
/// they are regular files, never beyond a bound. A FIFO would hold the reader until some writer came, and a device
/// such as <c>/dev/zero</c> never ends: both are refused at once, as are directories.
/// </summary>
internal static partial class InputFile
{
    // statx(2): the Linux values, the same on every architecture, as is struct statx's layout.
    private const int AT_FDCWD = -100;
    private const int AT_EMPTY_PATH = 0x1000;
    private const int AT_SYMLINK_NOFOLLOW = 0x100;
    private const uint STATX_BASIC_STATS = 0x7ff;
    private const int StatxSize = 256;
    private const int OwnerOffset = 20;
    private const int GroupOffset = 24;
    private const int ModeOffset = 28;
    private const int InodeOffset = 32;
    private const int SizeOffset = 40;
    private const int ChangeTimeOffset = 96;
    private const int WriteTimeOffset = 112;
    private const int DeviceMajorOffset = 136;
    private const int DeviceMinorOffset = 140;

    // errno values meaning the path is not there.
    private const int ENOENT = 2;
    private const int ENOTDIR = 20;

    // errno values meaning statx itself is not available (an old kernel; a container's seccomp filter).
    private const int EPERM = 1;
    private const int ENOSYS = 38;

    // open(2): the generic Linux values, those of every architecture .NET runs on. O_NONBLOCK makes opening a FIFO
    // return at once instead of waiting for a writer; regular files ignore it.
    private const int O_RDONLY = 0;
    private const int O_NOCTTY = 0x100;
    private const int O_NONBLOCK = 0x800;
    private const int O_CLOEXEC = 0x80000;
    private const int EINTR = 4;
    private const int EACCES = 13;

    private static int s_noStatx;

    /// <summary>Called, where set, between the look at a path and its opening: lets a test swap the file in between.</summary>
    [ThreadStatic]
    internal static Action<string>? t_beforeOpen;

    /// <summary>The status of <paramref name="path"/>, through symbolic links.</summary>
    public static FileStatus Stat(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        return TryLinuxStat(AT_FDCWD, path, 0, out FileStatus status) ? status : StatPortably(path);
    }

    /// <summary>
    /// The user ID of the owner of <paramref name="path"/> itself, a symbolic link not followed; null where statx(2) is not
    /// available or the path is not there.
    /// </summary>
    public static uint? OwnerOfLink(string path) =>
        TryLinuxStat(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, out FileStatus status) ? status.Owner : null;

    /// <summary>
    /// The bytes of <paramref name="path"/>, a regular file of at most <paramref name="maxBytes"/> bytes. Whatever
    /// else the path names is refused before it is opened, and again once it is open, by what the descriptor names: a
    /// path swapped for a FIFO in between neither holds the open (on Linux it is made not to wait for a writer) nor is
    /// read. A file that grows while it is read is read no further than the bound.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InputFileException">It is not a regular file (the message says what it is) or is larger than
    /// <paramref name="maxBytes"/>.</exception>
    /// <exception cref="IOException">It could not be read.</exception>
    /// <exception cref="UnauthorizedAccessException">It may not be read.</exception>
    public static byte[] ReadAll(string path, int maxBytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxBytes);
        FileStatus status = Stat(path);
        if (!status.Exists)
        {
            throw new FileNotFoundException($"'{path}' does not exist", path);
        }

        if (Refusal(path, status) is { } refusal)
        {
            throw new InputFileException(refusal);
        }

        t_beforeOpen?.Invoke(path);
        using SafeFileHandle handle = Open(path);
        using var stream = new FileStream(handle, FileAccess.Read, bufferSize: 0);
        if (OpenRefusal(path, handle, stream) is { } openRefusal)
        {
            throw new InputFileException(openRefusal);
        }

        if (stream.Length > maxBytes)
        {
            throw TooLarge(path, maxBytes);
        }

        // The length told is where reading starts, not a promise: read to the end, one byte past the bound at most.
        byte[] buffer = new byte[(int)stream.Length];
        int filled = 0;
        while (true)
        {
            if (filled == buffer.Length)
            {
                if (buffer.Length > maxBytes)
                {
                    Array.Clear(buffer);
                    throw TooLarge(path, maxBytes);
                }

                byte[] larger = new byte[Math.Min(Math.Max(buffer.Length * 2, 4096), maxBytes + 1)];
                buffer.CopyTo(larger, 0);
                Array.Clear(buffer);
                buffer = larger;
            }

            int read = stream.Read(buffer, filled, buffer.Length - filled);
            if (read == 0)
            {
                break;
            }

            filled += read;
        }

        if (filled == buffer.Length)
        {
            return buffer;
        }

        byte[] exact = buffer[..filled];
        Array.Clear(buffer);
        return exact;
    }

    /// <summary>
    /// Why a file a setting names cannot be read, as that setting's error says it: "'x': no such file" when nothing is
    /// there, else <see cref="Refusal"/>'s words for what is there instead of a regular file; null when it may be read.
    /// </summary>
    public static string? Problem(string path)
    {
        FileStatus status = Stat(path);
        return status.Exists ? Refusal(path, status) : $"'{path}': no such file";
    }

    /// <summary>
    /// Why <paramref name="path"/>, whose status is <paramref name="status"/>, is not read ("'PATH' is a FIFO (named
    /// pipe), not a regular file"), or null when it may be: a regular file, something missing, or something stat(2)
    /// could not look at (opening it gives the reason).
    /// </summary>
    public static string? Refusal(string path, FileStatus status) =>
        status.Kind is FileKind.Regular or FileKind.Unknown or FileKind.Missing ? null : NotRegular(path, status.Kind);

    private static string NotRegular(string path, FileKind kind) => kind switch
    {
        FileKind.Directory => $"'{path}' is a directory, not a regular file",
        FileKind.Fifo => $"'{path}' is a FIFO (named pipe), not a regular file",
        FileKind.CharacterDevice => $"'{path}' is a character device, not a regular file",
        FileKind.BlockDevice => $"'{path}' is a block device, not a regular file",
        FileKind.Socket => $"'{path}' is a socket, not a regular file",
        _ => $"'{path}' is not a regular file",
    };

    // Opens the path for reading. On Linux with open(2), which, unlike FileStream, can be told not to wait for a
    // FIFO's writer; elsewhere what FileStream does.
    private static SafeFileHandle Open(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        }

        int descriptor;
        do
        {
            descriptor = OpenFile(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        }
        while (descriptor < 0 && Marshal.GetLastPInvokeError() == EINTR);

        if (descriptor >= 0)
        {
            return new SafeFileHandle(descriptor, ownsHandle: true);
        }

        int errno = Marshal.GetLastPInvokeError();
        throw errno switch
        {
            ENOENT or ENOTDIR => new FileNotFoundException($"'{path}' does not exist", path),
            EACCES or EPERM => new UnauthorizedAccessException($"Access to the path '{path}' is denied."),
            // The errno as its HResult, as the runtime's own file calls give it on Unix: a caller tells EMFILE from a file
            // that cannot be read (SystemFile.TryRead).
            _ => new IOException($"'{path}' could not be opened: {Marshal.GetPInvokeErrorMessage(errno)}", errno),
        };
    }

    // Why the file open as handle and stream, opened as path, is not read, or null when it is a regular file: told by
    // statx(2) of the descriptor where it is available; elsewhere a directory, or a file that cannot seek (a FIFO, a
    // socket, a terminal) is refused, and a device that can (/dev/zero) is read to the bound.
    private static string? OpenRefusal(string path, SafeFileHandle handle, FileStream stream)
    {
        FileKind kind = TryLinuxStat((int)handle.DangerousGetHandle(), string.Empty, AT_EMPTY_PATH, out FileStatus status)
            ? status.Kind
            : (File.GetAttributes(handle) & FileAttributes.Directory) != 0 ? FileKind.Directory
            : stream.CanSeek ? FileKind.Regular
            : FileKind.Unknown;
        return kind == FileKind.Regular ? null : NotRegular(path, kind);
    }

    private static InputFileException TooLarge(string path, int maxBytes) =>
        new(string.Create(CultureInfo.InvariantCulture, $"'{path}' is larger than {maxBytes} bytes"));

    // statx(2) of path, relative to directory, where it is available; false where it is not (and from then on).
    private static bool TryLinuxStat(int directory, string path, int flags, out FileStatus status)
    {
        if (OperatingSystem.IsLinux() && Volatile.Read(ref s_noStatx) == 0)
        {
            try
            {
                if (TryStatx(directory, path, flags, out status))
                {
                    return true;
                }
            }
            catch (Exception exception) when (exception is EntryPointNotFoundException or DllNotFoundException)
            {
                // A C library older than statx (glibc 2.28): what FileInfo tells instead, from now on.
            }

            Volatile.Write(ref s_noStatx, 1);
        }

        status = default;
        return false;
    }

    private static bool TryStatx(int directory, string path, int flags, out FileStatus status)
    {
        Span<byte> bytes = stackalloc byte[StatxSize];
        if (Statx(directory, path, flags, STATX_BASIC_STATS, bytes) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            status = errno switch
            {
                ENOENT or ENOTDIR => default,
                ENOSYS or EPERM => default,
                _ => new FileStatus(FileKind.Unknown, 0, default, default, 0, 0),
            };
            return errno is not (ENOSYS or EPERM);
        }

        int mode = MemoryMarshal.Read<ushort>(bytes[ModeOffset..]);
        ulong device = ((ulong)MemoryMarshal.Read<uint>(bytes[DeviceMajorOffset..]) << 32) | MemoryMarshal.Read<uint>(bytes[DeviceMinorOffset..]);
        status = new FileStatus(
            KindOf(mode),
            (long)MemoryMarshal.Read<ulong>(bytes[SizeOffset..]),
            TimeAt(bytes[WriteTimeOffset..]),
            TimeAt(bytes[ChangeTimeOffset..]),
            device,
            MemoryMarshal.Read<ulong>(bytes[InodeOffset..]))
        {
            Permissions = (UnixFileMode)(mode & 0xfff),
            Owner = MemoryMarshal.Read<uint>(bytes[OwnerOffset..]),
            Group = MemoryMarshal.Read<uint>(bytes[GroupOffset..]),
        };
        return true;
    }

    // struct statx_timestamp: seconds (signed 64 bits), then nanoseconds (unsigned 32 bits).
    // A file system may hold times DateTime cannot (btrfs keeps 64-bit seconds): such a time is the nearest one it can,
    // rather than an exception out of Stat for every reader of the file.
    internal static DateTime TimeAt(ReadOnlySpan<byte> timestamp)
    {
        long seconds = Math.Clamp(MemoryMarshal.Read<long>(timestamp), s_firstSecond, s_lastSecond);
        return DateTime.UnixEpoch.AddTicks((seconds * TimeSpan.TicksPerSecond) + (MemoryMarshal.Read<uint>(timestamp[8..]) % 1_000_000_000 / 100));
    }

    private static readonly long s_firstSecond = (DateTime.MinValue - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond;
    private static readonly long s_lastSecond = ((DateTime.MaxValue - DateTime.UnixEpoch).Ticks / TimeSpan.TicksPerSecond) - 1;

    // The S_IFMT bits of st_mode (inode(7)).
    private static FileKind KindOf(int mode) => (mode & 0xf000) switch
    {
        0x8000 => FileKind.Regular,
        0x4000 => FileKind.Directory,
        0x1000 => FileKind.Fifo,
        0x2000 => FileKind.CharacterDevice,
        0x6000 => FileKind.BlockDevice,
        0xc000 => FileKind.Socket,
        _ => FileKind.Unknown,
    };

    // Without stat(2): the file a link leads to, or the link itself when it cannot be followed (a loop; reading it then
    // fails as well). FileInfo tells directories from files only, so a FIFO or a device passes here as a file.
    private static FileStatus StatPortably(string path)
    {
        var info = new FileInfo(path);
        try
        {
            if ((info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is not null
                && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target)
            {
                info = target;
            }
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
        }

        if (info.Exists)
        {
            return new FileStatus(FileKind.Regular, info.Length, info.LastWriteTimeUtc, default, 0, 0);
        }

        return Directory.Exists(info.FullName) ? new FileStatus(FileKind.Directory, 0, default, default, 0, 0) : default;
    }

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int directory, string path, int flags, uint mask, Span<byte> buffer);

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenFile(string path, int flags);
}

/// <summary>A file refused before or while it was read: not a regular file, or too large. The message names the file and says why.</summary>
internal sealed class InputFileException(string message) : IOException(message);
