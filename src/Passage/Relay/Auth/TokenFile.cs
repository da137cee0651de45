using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Security.Cryptography;
using Passage.Configuration;
using Passage.Identity;

namespace Passage.Relay.Auth;

/// <summary>
/// The proxy tokens a relay accepts, read from a file and re-read when it changes. Only SHA-256 hashes
/// of the tokens are kept in memory. Safe to share between connections.
/// </summary>
/// <remarks>
/// <para>The file holds one token per line; surrounding spaces, tabs and carriage returns are trimmed,
/// and blank lines and lines starting with <c>#</c> are skipped, as is a UTF-8 byte order mark at its start. A token is token68 (RFC 9110 §11.2:
/// letters, digits, <c>-._~+/</c>, then optional <c>=</c>), so that it can be sent both as
/// <c>Bearer</c> and as a <c>Basic</c> password, and at most
/// <see cref="ProxyCredentials.MaxTokenLength"/> characters. Any other line makes the whole file bad,
/// with an error naming the line number but not its content.</para>
/// <para>Re-reading: on use, at most once per check interval (one second by default), the file is
/// re-read when a <see cref="FileSystemWatcher"/> on its directory has seen it written, created, deleted
/// or renamed over, or when its <see cref="FileStatus"/> (inode, length, last-write and status-change
/// times) differs from that of the last read (through a symbolic link, that of the file it leads to: a
/// mounted Kubernetes secret changes only there). Both catch replacement by rename (as editors and
/// configuration managers do) even when the new file keeps the old one's length and time (<c>cp -p</c>,
/// <c>rsync -t</c>); the comparison also where no watcher could be created (inotify limits) or an event
/// was lost. A path that is not a regular file (a FIFO, a device, a directory) is refused before it is
/// opened, as is a file larger than <see cref="MaxFileSize"/>. The re-read runs on
/// the thread that calls <see cref="IsValid"/>, never on the watcher's: one caller re-reads while the
/// others go on with the current set. A re-read during which the file changed (written in place, in more than one
/// write) is not used, as it may hold part of a token: the next check reads the file again.</para>
/// <para>A file that becomes missing, unreadable or bad keeps the last good set in force, sets
/// <see cref="LastError"/> and raises <see cref="Changed"/> once per distinct error; a successful
/// re-read clears the error and raises <see cref="Changed"/>. A file with no tokens is valid and lets
/// no one in.</para>
/// </remarks>
public sealed class TokenFile : IDisposable
{
    /// <summary>How often, at most, the file is checked for changes unless told otherwise.</summary>
    public static readonly TimeSpan DefaultCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>The largest token file read; a larger one is an error.</summary>
    public const int MaxFileSize = 1024 * 1024;

    private const int HashSize = SHA256.HashSizeInBytes;

    private static readonly SearchValues<byte> s_token68 =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"u8);

    private readonly TimeProvider _time;
    private readonly TimeSpan _checkInterval;
    private readonly Lock _gate = new();
    private readonly FileSystemWatcher? _watcher;

    // Replaced whole on reload, never changed in place until Dispose: readers take one reference.
    private volatile byte[] _hashes;
    private FileStatus _fingerprint;
    private long _lastCheck;

    // 1 when the watcher has seen the file change since the last re-read began.
    private int _dirty;
    private volatile string? _lastError;
    private volatile bool _disposed;

    // How open the file was found at its last read (SecretFile.Exposure), or null when it is only its owner's.
    private string? _exposure;

    private TokenFile(
        string path, TimeProvider time, TimeSpan checkInterval, byte[] hashes, FileStatus fingerprint, bool watch)
    {
        Path = path;
        _time = time;
        _checkInterval = checkInterval;
        _hashes = hashes;
        _fingerprint = fingerprint;
        _lastCheck = time.GetTimestamp();
        _exposure = SecretFile.Exposure(path);
        _watcher = watch ? TryWatch(path) : null;

        // The watcher starts after the first read: re-read once, in case the file changed in between.
        _dirty = _watcher is null ? 0 : 1;
    }

    /// <summary>Raised after a re-read, on the thread that triggered it: loaded, or why not.</summary>
    public event EventHandler<TokenFileChangedEventArgs>? Changed;

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The number of tokens in force.</summary>
    public int Count => _hashes.Length / HashSize;

    /// <summary>Why the last re-read failed while the previous tokens stay in force, or <see langword="null"/>.</summary>
    public string? LastError => _lastError;

    /// <summary>Reads a token file for the first time.</summary>
    /// <param name="path">The file.</param>
    /// <param name="file">The token file, on success.</param>
    /// <param name="error">On failure, why: the file is missing, unreadable, too large, or has a bad line
    /// (named by number), or is not a regular file (a FIFO, a device, a directory). The caller prefixes its configuration key and refuses to start.</param>
    /// <param name="timeProvider">The clock for the check interval; <see cref="TimeProvider.System"/> when null.</param>
    /// <param name="checkInterval">How often, at most, to check the file; <see cref="DefaultCheckInterval"/> when null.</param>
    /// <returns>Whether the file was read.</returns>
    public static bool TryOpen(
        string path,
        [NotNullWhen(true)] out TokenFile? file,
        [NotNullWhen(false)] out string? error,
        TimeProvider? timeProvider = null,
        TimeSpan? checkInterval = null) =>
        TryOpen(path, out file, out error, timeProvider, checkInterval, watch: true);

    /// <summary>As the public overload; <paramref name="watch"/> false leaves only the length and time
    /// comparison, for tests of that fallback.</summary>
    internal static bool TryOpen(
        string path,
        [NotNullWhen(true)] out TokenFile? file,
        [NotNullWhen(false)] out string? error,
        TimeProvider? timeProvider,
        TimeSpan? checkInterval,
        bool watch)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        TimeSpan interval = checkInterval ?? DefaultCheckInterval;
        ArgumentOutOfRangeException.ThrowIfLessThan(interval, TimeSpan.Zero, nameof(checkInterval));

        file = null;
        if (!TryStat(path, out FileStatus fingerprint, out error) || !TryRead(path, out byte[]? hashes, out error))
        {
            return false;
        }

        file = new TokenFile(path, timeProvider ?? TimeProvider.System, interval, hashes, fingerprint, watch);
        return true;
    }

    /// <summary>
    /// Whether <paramref name="token"/> is one of the tokens in force. Its hash is compared with every
    /// stored hash in constant time, without stopping at a match, so the time taken tells neither which
    /// token matched nor, through the token's length, anything about the stored ones.
    /// </summary>
    /// <param name="token">The token the client sent.</param>
    /// <returns>Whether the token is valid.</returns>
    /// <exception cref="ObjectDisposedException">The file was disposed.</exception>
    public bool IsValid(ReadOnlySpan<char> token)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ReloadIfDue();
        if (token.IsEmpty || token.Length > ProxyCredentials.MaxTokenLength)
        {
            return false;
        }

        Span<byte> bytes = stackalloc byte[ProxyCredentials.MaxTokenLength];
        Span<byte> hash = stackalloc byte[HashSize];
        try
        {
            // Tokens are ASCII (token68), so a character that is not cannot be part of a valid one.
            for (int i = 0; i < token.Length; i++)
            {
                if (token[i] > 0x7f)
                {
                    return false;
                }

                bytes[i] = (byte)token[i];
            }

            SHA256.HashData(bytes[..token.Length], hash);
            byte[] hashes = _hashes;
            int matched = 0;
            for (int offset = 0; offset < hashes.Length; offset += HashSize)
            {
                matched |= CryptographicOperations.FixedTimeEquals(hash, hashes.AsSpan(offset, HashSize)) ? 1 : 0;
            }

            return matched != 0;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
            CryptographicOperations.ZeroMemory(hash);
        }
    }

    /// <summary>Forgets the tokens. Idempotent.</summary>
    public void Dispose()
    {
        _disposed = true;
        _watcher?.Dispose();
        lock (_gate)
        {
            CryptographicOperations.ZeroMemory(_hashes);
            _hashes = [];
        }
    }

    private void ReloadIfDue()
    {
        if (_time.GetElapsedTime(Interlocked.Read(ref _lastCheck)) < _checkInterval || !_gate.TryEnter())
        {
            return;
        }

        TokenFileChangedEventArgs? change = null;
        try
        {
            long now = _time.GetTimestamp();
            if (_disposed || _time.GetElapsedTime(_lastCheck, now) < _checkInterval)
            {
                return;
            }

            Interlocked.Exchange(ref _lastCheck, now);
            change = Reload();
        }
        finally
        {
            _gate.Exit();
        }

        if (change is not null)
        {
            Changed?.Invoke(this, change);
        }
    }

    // Under _gate. The change to report, or null when there is none.
    private TokenFileChangedEventArgs? Reload()
    {
        // Cleared before reading, so that a change during the read is caught by the next check.
        bool dirty = Interlocked.Exchange(ref _dirty, 0) != 0;
        if (!TryStat(Path, out FileStatus fingerprint, out string? error))
        {
            return Fail(error);
        }

        // While in error, retry even when nothing seems to have changed: a permission fixed by chmod
        // changes neither the length nor the last-write time.
        if (!dirty && fingerprint == _fingerprint && _lastError is null)
        {
            return null;
        }

        // Stat first, then read, then stat again. A file written to meanwhile (an edit in place, a copy still under way) may
        // have been read in part: its last line the first characters of a token, which would be valid until the next
        // check. Nothing read so is used or reported; the fingerprint kept is the last one used, so the next check reads
        // the file again, as it is then.
        if (!TryRead(Path, out byte[]? hashes, out error))
        {
            if (ChangedSince(fingerprint))
            {
                return null;
            }

            _fingerprint = fingerprint;
            return Fail(error);
        }

        if (ChangedSince(fingerprint))
        {
            CryptographicOperations.ZeroMemory(hashes);
            return null;
        }

        bool same = _lastError is null && hashes.AsSpan().SequenceEqual(_hashes);
        _fingerprint = fingerprint;
        // A change of mode changes the status-change time, so it is re-read too: one that opens the file to others in a
        // way not told of yet is reported, with or without new tokens (the first read's, whoever opened it tells of).
        var exposure = SecretFile.Exposure(Path);
        var newlyExposed = exposure is not null && exposure != _exposure ? exposure : null;
        _exposure = exposure;
        if (same)
        {
            // Touched, or rewritten with the same tokens: nothing to report, unless it is now more open.
            return newlyExposed is null ? null : new TokenFileChangedEventArgs(null, Count, newlyExposed);
        }

        // The old array is left as it is: a reader that took it a moment ago may still be comparing, and
        // must not see a token that is valid in both sets fail. It holds hashes, never tokens.
        _hashes = hashes;
        _fingerprint = fingerprint;
        _lastError = null;
        return new TokenFileChangedEventArgs(null, Count, newlyExposed);
    }

    // Under _gate. Whether the file is no longer as it was when fingerprint was taken, before a read; if so, the next
    // check reads it again.
    private bool ChangedSince(FileStatus fingerprint)
    {
        if (InputFile.Stat(Path) == fingerprint)
        {
            return false;
        }

        Volatile.Write(ref _dirty, 1);
        return true;
    }

    private TokenFileChangedEventArgs? Fail(string error)
    {
        if (error == _lastError)
        {
            return null;
        }

        _lastError = error;
        return new TokenFileChangedEventArgs(error, Count);
    }

    private FileSystemWatcher? TryWatch(string path)
    {
        string full = System.IO.Path.GetFullPath(path);
        string? directory = System.IO.Path.GetDirectoryName(full);
        if (directory is null)
        {
            return null;
        }

        FileSystemWatcher? watcher = null;
        try
        {
            watcher = new FileSystemWatcher(directory, System.IO.Path.GetFileName(full))
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size
                    | NotifyFilters.CreationTime | NotifyFilters.Attributes | NotifyFilters.Security,
            };
            FileSystemEventHandler changed = (_, _) => Volatile.Write(ref _dirty, 1);
            watcher.Changed += changed;
            watcher.Created += changed;
            watcher.Deleted += changed;
            watcher.Renamed += (_, _) => Volatile.Write(ref _dirty, 1);

            // A lost event (overflow) may have been the one that mattered.
            watcher.Error += (_, _) => Volatile.Write(ref _dirty, 1);
            watcher.EnableRaisingEvents = true;
            return watcher;
        }
        catch (Exception exception) when (exception is IOException or ArgumentException
            or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            // No watcher (inotify limits, an odd file system): the length and time comparison remains.
            watcher?.Dispose();
            return null;
        }
    }

    private static bool TryStat(string path, out FileStatus fingerprint, [NotNullWhen(false)] out string? error)
    {
        fingerprint = InputFile.Stat(path);
        error = fingerprint.Exists ? InputFile.Refusal(path, fingerprint) : $"'{path}' does not exist";
        return error is null;
    }

    private static bool TryRead(string path, [NotNullWhen(true)] out byte[]? hashes, [NotNullWhen(false)] out string? error)
    {
        hashes = null;
        byte[] content;
        try
        {
            content = InputFile.ReadAll(path, MaxFileSize);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            error = exception is FileNotFoundException or InputFileException ? exception.Message : $"'{path}' cannot be read: {exception.Message}";
            return false;
        }

        try
        {
            return TryHashLines(path, content, out hashes, out error);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(content);
        }
    }

    private static bool TryHashLines(
        string path, ReadOnlySpan<byte> content, [NotNullWhen(true)] out byte[]? hashes, [NotNullWhen(false)] out string? error)
    {
        hashes = null;
        error = null;
        var collected = new List<byte[]>();
        int lineNumber = 0;

        // A UTF-8 byte order mark, which some editors write first (Windows PowerShell's -Encoding UTF8 does), says how the
        // file is encoded: it is no part of the first line, which the operator sees as a token and would be told is not.
        content = content.StartsWith("\uFEFF"u8) ? content[3..] : content;
        foreach (Range range in content.Split((byte)'\n'))
        {
            lineNumber++;
            ReadOnlySpan<byte> line = content[range].Trim(" \t\r"u8);
            if (line.IsEmpty || line[0] == (byte)'#')
            {
                continue;
            }

            ReadOnlySpan<byte> body = line.TrimEnd((byte)'=');
            if (body.IsEmpty || body.ContainsAnyExcept(s_token68) || line.Length > ProxyCredentials.MaxTokenLength)
            {
                error = string.Create(
                    CultureInfo.InvariantCulture,
                    $"'{path}' line {lineNumber} is not a token (letters, digits, -._~+/ then optional =, at most {ProxyCredentials.MaxTokenLength} characters)");
                return false;
            }

            collected.Add(SHA256.HashData(line));
        }

        hashes = new byte[collected.Count * HashSize];
        for (int i = 0; i < collected.Count; i++)
        {
            collected[i].CopyTo(hashes, i * HashSize);
        }

        return true;
    }

}
