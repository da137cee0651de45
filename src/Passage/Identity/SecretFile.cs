using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Passage.Configuration;

namespace Passage.Identity;

/// <summary>
/// Writes files that hold secrets: readable and writable by the owner only (0600) from the
/// moment they exist, never created with wider permissions and narrowed afterwards; a directory
/// missing on the way is created for the owner only (0700).
/// </summary>
internal static partial class SecretFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Called, where set, once the content is written and before the file takes its name: lets a test look in between.</summary>
    [ThreadStatic]
    internal static Action<string>? t_beforeNamed;

    /// <summary>
    /// Writes <paramref name="content"/> to <paramref name="path"/>: to a 0600 temporary file in the same directory
    /// first, which then takes the name, so that whoever reads the path (another process starting with the same key, one
    /// creating it at the same moment) finds nothing, the old file or the whole new one, never one half-written; and a
    /// write cut short (a crash, a full disk) leaves no key that is not one. Without <paramref name="overwrite"/> an
    /// existing file is refused with an <see cref="IOException"/> and left untouched, also when it appears meanwhile:
    /// the name is then taken by link(2), which refuses one that is there. With it, the temporary file is renamed over
    /// the old one. A symbolic link is written through, as ssh-keygen does: the file it leads to is replaced (the
    /// temporary file made beside that one) and the link is kept, so whatever else names that file gets the new content too.
    /// </summary>
    public static void Write(string path, ReadOnlySpan<byte> content, bool overwrite)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fullPath = Path.GetFullPath(path);
        if (overwrite)
        {
            fullPath = LinkTarget(fullPath);
        }
        // Else the framework's "Is a directory", or without overwrite "already exists", as if it could be replaced.
        if (Directory.Exists(fullPath))
        {
            // Without overwrite no link was followed above; the directory is named all the same, as it is with it.
            var directory = overwrite ? fullPath : File.ResolveLinkTarget(fullPath, returnFinalTarget: true)?.FullName ?? fullPath;
            throw new IOException($"'{path}' is a directory{LeadsTo(path, directory)}; a key is written to a file: name one in it ('{Path.Combine(path, "relay.pem")}', say).");
        }
        // A FIFO, a device or a socket is not replaced by a key file (the rename would put it where /dev/null was), with or
        // without overwrite: through a link too, as the link was followed above.
        if (InputFile.Refusal(fullPath, InputFile.Stat(fullPath)) is { } notAFile)
        {
            throw new IOException($"{notAFile}; a key is written to a regular file, and it was left untouched.");
        }
        CreateDirectory(Path.GetDirectoryName(fullPath));
        if (!overwrite && File.Exists(fullPath))
        {
            throw AlreadyExists(path);
        }

        var parent = Path.GetDirectoryName(fullPath) ?? throw new IOException($"'{path}' has no directory.");
        var temporary = Path.Combine(parent, $".{Path.GetFileName(fullPath)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");
        // The temporary file's own name would say nothing to whoever asked for the key: the directory it could not be
        // made in, and why, are what to fix (through a link, one they may not have had in mind).
        WriteIn(parent, temporary, content, $"'{path}'{LeadsTo(path, fullPath)}",
            overwrite ? ", where the new key is first written beside the old one, then renamed over it" : "");
        try
        {
            t_beforeNamed?.Invoke(fullPath);
            if (overwrite)
            {
                // rename(2) within one directory replaces the target atomically.
                File.Move(temporary, fullPath, overwrite: true);
            }
            else
            {
                LinkNew(temporary, fullPath, path);
            }
        }
        catch
        {
            TryDelete(temporary);
            throw;
        }
    }

    /// <summary>
    /// Gives the written file <paramref name="temporary"/> the name <paramref name="fullPath"/> unless that name is taken,
    /// whatever takes it meanwhile: link(2), which refuses a name that is there (a dangling symbolic link too), then the
    /// temporary name removed. The framework's move without overwrite looks, then renames, which replaces a file that
    /// appeared in between: two processes creating a key at once would each go on with its own, one of them no longer in
    /// the file. Where the file system has no hard links, that move is what is left.
    /// </summary>
    private static void LinkNew(string temporary, string fullPath, string path)
    {
        if (OperatingSystem.IsWindows())
        {
            File.Move(temporary, fullPath, overwrite: false);
            return;
        }
        if (Link(temporary, fullPath) == 0)
        {
            TryDelete(temporary);
            return;
        }
        var errno = Marshal.GetLastPInvokeError();
        switch (errno)
        {
            case EEXIST:
                throw AlreadyExists(path);
            case EPERM or EXDEV or EMLINK or ENOSYS or EOPNOTSUPP:
                File.Move(temporary, fullPath, overwrite: false);
                return;
            default:
                throw new IOException($"'{path}' cannot be written: {Marshal.GetPInvokeErrorMessage(errno)}.");
        }
    }

    private static IOException AlreadyExists(string path) => new($"'{path}' already exists; refusing to overwrite it.");

    // errno of link(2): the name is taken; the file system has no hard links (EPERM, EOPNOTSUPP, ENOSYS) or not across
    // these (EXDEV), or the file has as many as it may have (EMLINK).
    private const int EPERM = 1, EEXIST = 17, EXDEV = 18, EMLINK = 31, ENOSYS = 38, EOPNOTSUPP = 95;

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string existing, string name);

    /// <summary>
    /// Where the symbolic link <paramref name="path"/> leads (<paramref name="resolved"/>), in words to follow its name in
    /// a message (<c> (the symbolic link leads to '/etc/passage/relay.pem')</c>); empty when it leads nowhere else.
    /// </summary>
    private static string LeadsTo(string path, string resolved) =>
        resolved != Path.GetFullPath(path) ? $" (the symbolic link leads to '{resolved}')" : "";

    /// <summary>
    /// The file the symbolic link <paramref name="fullPath"/> finally leads to (through links to links), or
    /// <paramref name="fullPath"/> itself when it is no link. Renamed over, the link would be replaced by a file of its
    /// own, leaving the file it led to (a mounted secret, a key kept elsewhere) with the old content. A link that another
    /// user than this one or root owns is refused, as the kernel's fs.protected_symlinks refuses to follow one in a
    /// shared directory: one planted where a key is to go would have any file of this user's replaced by the key
    /// (ssh-keygen's open(2) meets that rule; reading the link here would not).
    /// </summary>
    private static string LinkTarget(string fullPath)
    {
        // Linux's MAXSYMLINKS.
        for (var links = 0; links <= 40; links++)
        {
            // Null for no link, and for nothing there (a key not written yet, a dangling link's target: created).
            if (new FileInfo(fullPath).LinkTarget is not { } target)
            {
                return fullPath;
            }
            if (!OperatingSystem.IsWindows() && InputFile.OwnerOfLink(fullPath) is { } owner && owner != 0 && owner != EffectiveUserId())
            {
                throw new IOException($"'{fullPath}' is a symbolic link another user (uid {owner}) owns; no key is written through it. Remove it, or write the key elsewhere.");
            }
            fullPath = Path.GetFullPath(target, Path.GetDirectoryName(fullPath)!);
        }
        throw new IOException($"'{fullPath}': too many levels of symbolic links.");
    }

    /// <summary>A directory missing on the way to a secret is created for its owner only (0700), as a key's home should be.</summary>
    private static void CreateDirectory(string? directory)
    {
        if (directory is null || Directory.Exists(directory))
        {
            return;
        }
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(directory);
            return;
        }
        // Else the framework's words: "The file '...' already exists", as if the key were refused for being there.
        if (FileInTheWay(directory) is { } problem)
        {
            throw new IOException(problem);
        }
        // Directory.CreateDirectory gives the mode to the last directory only, the ones above it the default (0755 under
        // the usual umask): each missing one is made here, outermost first.
        var missing = new Stack<string>();
        for (var path = directory; path is not null && !Directory.Exists(path); path = Path.GetDirectoryName(path))
        {
            missing.Push(path);
        }
        foreach (var path in missing)
        {
            Directory.CreateDirectory(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    /// <summary>
    /// Why nothing can be made in <paramref name="directory"/> because a file stands where it or a directory above it
    /// should be (<c>'/etc/passwd' is a file, not a directory, so nothing can be written in it.</c>), or null when
    /// there is none. <see cref="Write"/> refuses with these words; settings check a key that is to be created with them.
    /// </summary>
    internal static string? FileInTheWay(string directory)
    {
        for (var path = Path.GetFullPath(directory); path is not null && !Directory.Exists(path); path = Path.GetDirectoryName(path))
        {
            if (File.Exists(path))
            {
                return $"'{path}' is a file, not a directory, so nothing can be written in it.";
            }
        }
        return null;
    }

    /// <summary>
    /// Why the existing regular file <paramref name="path"/>, which holds a secret (a private key, proxy tokens), is too
    /// open (<c>'relay.pem' is readable by anyone on this machine (mode 0644); chmod 600 'relay.pem' keeps it its
    /// owner's</c>), or null when it is not, or where its mode is not known. Too open, as ssh judges a key: readable or
    /// writable by anyone; or, for a file this process's user owns, by its group. Writable matters as much as readable:
    /// whoever may write a token file may add a token of their own, and whoever may write a key may put their own in
    /// its place. A file another user (root) owns and lets this one read through its group is how a service is given a
    /// secret, and is not. The fix named keeps this process a reader: <c>chmod o-r</c> for another user's file this
    /// process reads through its group (or as root); for one it reads only as anyone may (a secret mounted 0644), a
    /// group of its user's first. The one place that decides it: a start warns with these words, <c>config check</c>
    /// too, and neither refuses the file (secrets are mounted with modes their operator did not always choose).
    /// </summary>
    internal static string? Exposure(string path) => OperatingSystem.IsWindows() ? null : Exposure(path, EffectiveUserId(), InGroup);

    /// <summary><see cref="Exposure(string)"/> as judged for the user <paramref name="user"/>, in the groups <paramref name="inGroup"/> tells.</summary>
    internal static string? Exposure(string path, uint user, Func<uint, bool> inGroup)
    {
        if (InputFile.Stat(path) is not { Kind: FileKind.Regular, Permissions: { } mode, Owner: { } owner, Group: { } group })
        {
            return null;
        }
        var ours = owner == user;
        var readers = Who(mode, UnixFileMode.OtherRead, UnixFileMode.GroupRead, ours);
        var writers = Who(mode, UnixFileMode.OtherWrite, UnixFileMode.GroupWrite, ours);
        var exposed = (readers, writers) switch
        {
            (null, null) => null,
            ({ } both, _) when both == writers => $"readable and writable by {both}",
            ({ } r, null) => $"readable by {r}",
            (null, { } w) => $"writable by {w}",
            ({ } r, { } w) => $"readable by {r} and writable by {w}",
        };
        if (exposed is null)
        {
            return null;
        }
        // Of another user's file only the bits for others are judged, so those are what its fix takes away.
        var bits = (readers is null ? "" : "r") + (writers is null ? "" : "w");
        // Another user's file is read through its group, or by root: taking that away would lock this process out.
        var fix = ours ? $"chmod 600 '{path}' keeps it its owner's"
            : readers is null || user == 0 || inGroup(group) ? $"chmod o-{bits} '{path}' keeps it from others"
            : $"this process reads it as anyone may, so chmod o-{bits} alone would lock it out: chgrp '{path}' to a group of its user's, then chmod o-{bits}";
        return $"'{path}' is {exposed} (mode {Convert.ToString((int)mode, 8).PadLeft(4, '0')}); {fix}";
    }

    /// <summary>Who besides its owner has the access of <paramref name="other"/> (and, for a file of ours, <paramref name="group"/>).</summary>
    private static string? Who(UnixFileMode mode, UnixFileMode other, UnixFileMode group, bool ours) =>
        (mode & other) != 0 ? "anyone on this machine"
        : (mode & group) != 0 && ours ? "its group"
        : null;

    /// <summary>Whether this process reads a file of <paramref name="group"/> through its group bits: its effective group, or one of its others.</summary>
    private static unsafe bool InGroup(uint group)
    {
        if (EffectiveGroupId() == group)
        {
            return true;
        }
        var count = GetGroups(0, null);
        if (count <= 0)
        {
            return false;
        }
        var groups = new uint[count];
        fixed (uint* list = groups)
        {
            count = GetGroups(count, list);
        }
        return count > 0 && groups.AsSpan(0, count).Contains(group);
    }

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint EffectiveUserId();

    [LibraryImport("libc", EntryPoint = "getegid")]
    private static partial uint EffectiveGroupId();

    [LibraryImport("libc", EntryPoint = "getgroups")]
    private static unsafe partial int GetGroups(int size, uint* list);

    /// <summary>
    /// <see cref="WriteNew"/> of <paramref name="fullPath"/> in <paramref name="directory"/>; a failure to make or write it
    /// is an <see cref="IOException"/> that names <paramref name="what"/> was asked for, the directory and the system's
    /// reason, then <paramref name="after"/> (<c>'/sys/kernel/node.pem' cannot be written: nothing can be created in
    /// '/sys/kernel' (Permission denied).</c>; once made, <c>... writing it in '/var/lib/passage' failed (No space left on
    /// device).</c>), not the framework's "Access to the path ... is denied".
    /// </summary>
    private static void WriteIn(string? directory, string fullPath, ReadOnlySpan<byte> content, string what, string after)
    {
        var created = false;
        try
        {
            WriteNew(fullPath, content, ref created);
        }
        catch (Exception e) when (directory is not null && Reason(e, created) is { } reason)
        {
            var failed = created ? $"writing it in '{directory}' failed" : $"nothing can be created in '{directory}'";
            throw new IOException($"{what} cannot be written: {failed} ({reason}){after}.", e);
        }
    }

    /// <summary>
    /// The system's words for why a file could not be made or written (<c>Permission denied</c>, <c>Read-only file
    /// system</c>), from the errno the framework keeps in the exception; null for an exception that is no such failure
    /// (a file that is there already, EEXIST, is said by its caller). Once the file was <paramref name="created"/>, the
    /// framework's <see cref="ArgumentOutOfRangeException"/> from a write is its word for EFBIG (a file size limit).
    /// </summary>
    internal static string? Reason(Exception e, bool created = false)
    {
        const int ENOENT = 2, EACCES = 13, EFBIG = 27;
        var errno = e switch
        {
            ArgumentOutOfRangeException when created => EFBIG,
            // The framework's HResult of an IOException it made from an errno is that errno.
            UnauthorizedAccessException { InnerException: IOException { HResult: > 0 and < 4096 } inner } => inner.HResult,
            UnauthorizedAccessException => EACCES,
            FileNotFoundException or DirectoryNotFoundException => ENOENT,
            IOException { HResult: > 0 and < 4096 } io => io.HResult,
            _ => 0,
        };
        return errno is 0 or EEXIST || OperatingSystem.IsWindows() ? null : Marshal.GetPInvokeErrorMessage(errno);
    }

    /// <summary>
    /// Creates <paramref name="fullPath"/> (refusing one that is there) and writes <paramref name="content"/> to disk;
    /// <paramref name="created"/> is set once the file exists. A write that fails (a full disk) removes the file: left
    /// empty or short, it would be taken for a key, and refused as one that exists by the next try.
    /// </summary>
    private static void WriteNew(string fullPath, ReadOnlySpan<byte> content, ref bool created)
    {
        var options = new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            // Unbuffered, so that closing it after a failed write has nothing left to write (and fail on) again: the
            // failed write's cleanup would never have run.
            BufferSize = 0,
        };
        if (!OperatingSystem.IsWindows())
        {
            // Applied by open(2) itself (minus the umask), so the file is never readable by others.
            options.UnixCreateMode = OwnerOnly;
        }
        var stream = new FileStream(fullPath, options);
        created = true;
        try
        {
            stream.Write(content);
            stream.Flush(flushToDisk: true);
            stream.Dispose();
        }
        catch
        {
            try
            {
                stream.Dispose();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
            {
                // The write's error is the one worth reporting; the file goes either way.
            }
            TryDelete(fullPath);
            throw;
        }
    }

    private static void TryDelete(string fullPath)
    {
        try
        {
            File.Delete(fullPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // Best effort: the original error is the one worth reporting.
        }
    }
}
