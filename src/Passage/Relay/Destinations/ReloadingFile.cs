namespace Passage.Relay.Destinations;

/// <summary>
/// A small system file read again when it changes (its size or time of last write, checked on each use, as the
/// C library checks resolv.conf and hosts; through a symbolic link, the file it leads to): <c>/etc/hosts</c>, <c>/etc/resolv.conf</c>. A missing or unreadable
/// file reads as null text.
/// </summary>
/// <typeparam name="T">What the file says.</typeparam>
internal sealed class ReloadingFile<T>(string path, Func<string?, T> read)
{
    private readonly object _gate = new();
    private (bool Exists, long Length, DateTime Written)? _version;
    private T? _value;

    /// <summary>The file's path.</summary>
    public string Path => path;

    /// <summary>What the file says now.</summary>
    public T Current
    {
        get
        {
            (bool, long, DateTime) version = Version();
            lock (_gate)
            {
                if (_version == version)
                {
                    return _value!;
                }
            }

            T value = read(version.Item1 ? SystemFile.ReadIfPresent(path) : null);
            lock (_gate)
            {
                _version = version;
                _value = value;
                return value;
            }
        }
    }

    private (bool, long, DateTime) Version()
    {
        FileInfo info = SystemFile.Stat(path);
        return info.Exists ? (true, info.Length, info.LastWriteTimeUtc) : (false, 0, default);
    }
}

/// <summary>Small system files (resolv.conf, hosts, nsswitch.conf) read whole, the way the C library tolerates them.</summary>
internal static class SystemFile
{
    /// <summary>
    /// The file at <paramref name="path"/> as reading it finds it: through a symbolic link, the file it leads to, whose
    /// length and time of last write change when new content arrives, where the link's own never do (a Kubernetes secret
    /// or config map, whose links are swapped to a new directory; resolv.conf under systemd-resolved). The link itself
    /// when it cannot be followed (a loop): reading it then fails as well.
    /// </summary>
    public static FileInfo Stat(string path)
    {
        var info = new FileInfo(path);
        try
        {
            // The attributes come with the stat the checks make anyway; only a link costs a readlink(2) more.
            return (info.Attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is not null
                && info.ResolveLinkTarget(returnFinalTarget: true) is FileInfo target ? target : info;
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return info;
        }
    }

    /// <summary>The text of <paramref name="path"/>, or null when it is missing or cannot be read.</summary>
    public static string? ReadIfPresent(string path)
    {
        try
        {
            return File.ReadAllText(path);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
