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
/// <remarks>
/// A change met while the process is short of descriptors (the next one would be of those kept free for the runtime, or
/// the open failed for want of one) is not read: what the file said before stands, and the change is read at the next
/// use with room. Read then as a missing file, it would have stood until the file changed again: a relay that ran out
/// of descriptors for a moment would have forgotten its hosts, or its name servers, for good.
/// </remarks>
/// <typeparam name="T">What the file says.</typeparam>
/// <param name="path">The file.</param>
/// <param name="read">What text says (null: no file).</param>
/// <param name="descriptorsShort">Whether the process is short of descriptors now; by default, whether the next one
/// would be of the headroom (<see cref="Transport.OpenFileLimit.NextInHeadroom"/>).</param>
internal sealed class ReloadingFile<T>(string path, Func<string?, T> read, Func<bool>? descriptorsShort = null)
{
    private readonly object _gate = new();
    private FileStatus? _version;
    private T? _value;
    private bool _hasValue;

    /// <summary>The file's path.</summary>
    public string Path => path;

    /// <summary>What the file says now.</summary>
    public T Current
    {
        get
        {
            FileStatus version = InputFile.Stat(path);
            bool hasValue;
            T? before;
            lock (_gate)
            {
                if (_version == version)
                {
                    return _value!;
                }

                (hasValue, before) = (_hasValue, _value);
            }

            string? text = null;
            if (version.Exists
                && ((hasValue && (descriptorsShort?.Invoke() ?? Transport.OpenFileLimit.NextInHeadroom())) || !SystemFile.TryRead(path, out text)))
            {
                // Short of descriptors: the change is read at a later use.
                return hasValue ? before! : read(null);
            }

            T value = read(text);
            lock (_gate)
            {
                _version = version;
                _value = value;
                _hasValue = true;
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
    public static string? ReadIfPresent(string path) => TryRead(path, out string? text) ? text : null;

    /// <summary>
    /// Reads <paramref name="path"/> as <see cref="ReadIfPresent"/> does; false when it could not be opened for want of a
    /// descriptor (EMFILE, ENFILE) or of memory, which says nothing of the file.
    /// </summary>
    public static bool TryRead(string path, out string? text)
    {
        try
        {
            // As File.ReadAllText reads: UTF-8 unless a byte order mark says otherwise.
            using var reader = new StreamReader(new MemoryStream(InputFile.ReadAll(path, MaxFileSize)), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
            text = reader.ReadToEnd();
            return true;
        }
        catch (IOException exception) when (exception.HResult is Enomem or Enfile or Emfile)
        {
            // On Unix the runtime gives an IOException the errno as its HResult.
            text = null;
            return false;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            text = null;
            return true;
        }
    }

    private const int Enomem = 12;
    private const int Enfile = 23;
    private const int Emfile = 24;
}
