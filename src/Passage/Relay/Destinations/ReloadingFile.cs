namespace Passage.Relay.Destinations;

/// <summary>
/// A small system file read again when it changes (its size or time of last write, checked on each use, as the
/// C library checks resolv.conf and hosts): <c>/etc/hosts</c>, <c>/etc/resolv.conf</c>. A missing or unreadable
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
        var info = new FileInfo(path);
        return info.Exists ? (true, info.Length, info.LastWriteTimeUtc) : (false, 0, default);
    }
}

/// <summary>Small system files (resolv.conf, hosts, nsswitch.conf) read whole, the way the C library tolerates them.</summary>
internal static class SystemFile
{
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
