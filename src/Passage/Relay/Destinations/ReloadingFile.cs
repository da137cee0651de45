using System.Text;
using Passage.Configuration;

namespace Passage.Relay.Destinations;

/// <summary>
/// A small system file read again when it changes (its <see cref="FileStatus"/>, checked on each use as the C library
/// checks resolv.conf and hosts, but with the inode too, so that a file renamed over it is read even when it keeps the
/// old one's length and time of last write; through a symbolic link, the file it leads to): <c>/etc/hosts</c>,
/// <c>/etc/resolv.conf</c>. A missing or unreadable file, or one that is not a regular file, reads as null text
/// (<see cref="SystemFile.ReadIfPresent"/>).
/// </summary>
/// <typeparam name="T">What the file says.</typeparam>
internal sealed class ReloadingFile<T>(string path, Func<string?, T> read)
{
    private readonly object _gate = new();
    private FileStatus? _version;
    private T? _value;

    /// <summary>The file's path.</summary>
    public string Path => path;

    /// <summary>What the file says now.</summary>
    public T Current
    {
        get
        {
            FileStatus version = InputFile.Stat(path);
            lock (_gate)
            {
                if (_version == version)
                {
                    return _value!;
                }
            }

            T value = read(version.Exists ? SystemFile.ReadIfPresent(path) : null);
            lock (_gate)
            {
                _version = version;
                _value = value;
                return value;
            }
        }
    }
}

/// <summary>Small system files (resolv.conf, hosts, nsswitch.conf) read whole, the way the C library tolerates them.</summary>
internal static class SystemFile
{
    /// <summary>
    /// The largest system file read: far above any real resolv.conf or nsswitch.conf, and room for a hosts file
    /// that blocks a few hundred thousand names. A larger one reads as missing.
    /// </summary>
    public const int MaxFileSize = 64 * 1024 * 1024;

    /// <summary>
    /// The text of <paramref name="path"/>, or null when it is missing, cannot be read, is not a regular file (a FIFO
    /// would hold the reader until a writer came, a device may never end) or is larger than <see cref="MaxFileSize"/>.
    /// </summary>
    public static string? ReadIfPresent(string path)
    {
        try
        {
            // As File.ReadAllText reads: UTF-8 unless a byte order mark says otherwise.
            using var reader = new StreamReader(new MemoryStream(InputFile.ReadAll(path, MaxFileSize)), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            return reader.ReadToEnd();
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
