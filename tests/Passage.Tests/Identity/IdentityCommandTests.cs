using System.Text.RegularExpressions;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Identity;

/// <summary><c>passage keygen</c> and <c>passage id</c>, run as the real program.</summary>
public sealed class IdentityCommandTests : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task KeygenPrintsTheIdThatIdReadsBack()
    {
        var path = _directory.File("node.pem");

        var keygen = await PassageProcess.RunAsync(["keygen", "--out", path, "--name", "relay.example", "--name", "127.0.0.1"], Timeout);
        var id = await PassageProcess.RunAsync(["id", path], Timeout);

        Assert.True(keygen.ExitCode == 0, keygen.StandardError);
        Assert.Matches("^[a-z2-7]{52}\n$", keygen.StandardOutput.Replace("\r", "", StringComparison.Ordinal));
        Assert.True(id.ExitCode == 0, id.StandardError);
        Assert.Equal(keygen.StandardOutput.Trim(), id.StandardOutput.Trim());
        Assert.Equal(keygen.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(path).ToString());
    }

    [Fact]
    public async Task KeygenCreatesMissingDirectoriesForItsOwnerOnly()
    {
        // As the relay does for its --key: the identity's home is made, readable by its owner alone.
        var path = Path.Combine(_directory.File("keys"), "relay", "node.pem");

        var keygen = await PassageProcess.RunAsync(["keygen", "--out", path], Timeout);

        Assert.True(keygen.ExitCode == 0, keygen.StandardError);
        Assert.Equal(keygen.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(path).ToString());
        if (!OperatingSystem.IsWindows())
        {
            var owner = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;
            Assert.Equal(owner, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
            // Every directory made on the way, not only the last: "keys" was made 0755.
            Assert.Equal(owner, File.GetUnixFileMode(_directory.File("keys")));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        }
    }

    [Fact]
    public async Task KeygenRefusesAnExistingFileUnlessForced()
    {
        var path = _directory.File("node.pem");
        var first = await PassageProcess.RunAsync(["keygen", "--out", path], Timeout);
        Assert.True(first.ExitCode == 0, first.StandardError);
        var before = await File.ReadAllBytesAsync(path).WaitAsync(Timeout);

        var refused = await PassageProcess.RunAsync(["keygen", "--out", path], Timeout);

        Assert.Equal(1, refused.ExitCode);
        Assert.Equal("", refused.StandardOutput);
        Assert.Contains(path, refused.StandardError, StringComparison.Ordinal);
        Assert.Contains("--force", refused.StandardError, StringComparison.Ordinal);
        Assert.Equal(before, await File.ReadAllBytesAsync(path).WaitAsync(Timeout));

        var forced = await PassageProcess.RunAsync(["keygen", "--out", path, "--force"], Timeout);

        Assert.True(forced.ExitCode == 0, forced.StandardError);
        Assert.NotEqual(first.StandardOutput, forced.StandardOutput);
        var id = await PassageProcess.RunAsync(["id", path], Timeout);
        Assert.Equal(forced.StandardOutput.Trim(), id.StandardOutput.Trim());
    }

    /// <summary>
    /// --force on a symbolic link replaces the file it leads to, as ssh-keygen does, not the link: the link is kept and the
    /// new key is in the file it names (it used to be the link that was renamed over, leaving that file with the old key).
    /// </summary>
    [Fact]
    public async Task KeygenForceWritesThroughASymbolicLink()
    {
        var target = Path.Combine(_directory.File("secrets"), "node.pem");
        var first = await PassageProcess.RunAsync(["keygen", "--out", target], Timeout);
        Assert.True(first.ExitCode == 0, first.StandardError);
        var link = _directory.File("node.pem");
        File.CreateSymbolicLink(link, target);

        var forced = await PassageProcess.RunAsync(["keygen", "--out", link, "--force"], Timeout);

        Assert.True(forced.ExitCode == 0, forced.StandardError);
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(forced.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(target).ToString());
        Assert.NotEqual(first.StandardOutput.Trim(), forced.StandardOutput.Trim());
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(target));
        }
        // No temporary file left beside either.
        Assert.Equal(["node.pem"], Directory.GetFileSystemEntries(Path.GetDirectoryName(target)!).Select(Path.GetFileName));
    }

    /// <summary>
    /// --force with nothing there yet writes the key, as without it; so through a dangling link, whose target it creates
    /// (the link kept). Reading the link of a path that does not exist failed: "Could not find file".
    /// </summary>
    [Fact]
    public async Task KeygenForceWritesAFileNotThereYetAndThroughADanglingLink()
    {
        var path = _directory.File("new.pem");
        var forced = await PassageProcess.RunAsync(["keygen", "--out", path, "--force"], Timeout);
        Assert.True(forced.ExitCode == 0, forced.StandardError);
        Assert.Equal(forced.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(path).ToString());

        var target = Path.Combine(_directory.File("secrets"), "node.pem");
        var link = _directory.File("dangling.pem");
        File.CreateSymbolicLink(link, target);
        var throughLink = await PassageProcess.RunAsync(["keygen", "--out", link, "--force"], Timeout);

        Assert.True(throughLink.ExitCode == 0, throughLink.StandardError);
        Assert.Equal(target, new FileInfo(link).LinkTarget);
        Assert.Equal(throughLink.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(target).ToString());
    }

    /// <summary>
    /// --force follows a chain of links (a relative one too), but not a link another user owns: one planted where a key is
    /// to go (a shared directory) would have the key replace whatever file of this user's it names. The link's target is
    /// left as it was, and the error says why.
    /// </summary>
    [RootFact("giving a link to another user")]
    public async Task KeygenForceDoesNotWriteThroughAnotherUsersLink()
    {
        var target = Path.Combine(_directory.File("secrets"), "node.pem");
        var first = await PassageProcess.RunAsync(["keygen", "--out", target], Timeout);
        Assert.True(first.ExitCode == 0, first.StandardError);
        var middle = _directory.File("middle.pem");
        File.CreateSymbolicLink(middle, Path.Combine("secrets", "node.pem"));
        var link = _directory.File("node.pem");
        File.CreateSymbolicLink(link, middle);

        var followed = await PassageProcess.RunAsync(["keygen", "--out", link, "--force"], Timeout);
        Assert.True(followed.ExitCode == 0, followed.StandardError);
        Assert.Equal(followed.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(target).ToString());

        using (var chown = System.Diagnostics.Process.Start("chown", ["-h", "65534", middle]))
        {
            chown.WaitForExit();
            Assert.Equal(0, chown.ExitCode);
        }
        var refused = await PassageProcess.RunAsync(["keygen", "--out", link, "--force"], Timeout);

        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains($"'{middle}' is a symbolic link another user (uid 65534) owns; no key is written through it.", refused.StandardError);
        Assert.Equal(followed.StandardOutput.Trim(), Passage.Identity.NodeIdentity.ReadNodeId(target).ToString());
        Assert.Equal(middle, new FileInfo(link).LinkTarget);
    }

    /// <summary>
    /// A directory named as the key, or a symbolic link to one, was "already exists ... Use --force", and with --force
    /// the framework's "Is a directory": now one line saying it is a directory and to name a file in it, and nothing
    /// in it is touched. A link says where it leads with --force or without (without, it did not).
    /// </summary>
    [Fact]
    public async Task KeygenSaysADirectoryIsOneAndToNameAFileInIt()
    {
        var directory = _directory.File("keys");
        Directory.CreateDirectory(directory);
        var link = _directory.File("keys-link");
        File.CreateSymbolicLink(link, directory);
        var leadsTo = $" (the symbolic link leads to '{directory}')";

        foreach (var (path, force, through) in new[] { (directory, false, ""), (directory, true, ""), (link, false, leadsTo), (link, true, leadsTo) })
        {
            var result = await PassageProcess.RunAsync(["keygen", "--out", path, .. force ? new[] { "--force" } : []], Timeout);

            Assert.Equal(1, result.ExitCode);
            Assert.Equal(
                $"passage keygen: '{path}' is a directory{through}; a key is written to a file: name one in it ('{Path.Combine(path, "relay.pem")}', say).",
                result.StandardError.Trim());
        }
        Assert.Empty(Directory.GetFileSystemEntries(directory));
    }

    /// <summary>
    /// --force writes the new key to a file beside the old one, then renames it over: where that directory takes no new
    /// file, the error was the framework's "Access to the path '.../.node.pem.1f2e0c9a7b3d4e5f.tmp' is denied", naming a
    /// file nobody asked for. Now it names the key asked for, where the link leads, the directory and the system's reason;
    /// without --force too. sysfs takes no new file even from root (a sysfs mounted read-only says so instead).
    /// </summary>
    [Fact]
    public async Task KeygenNamesTheDirectoryItCannotWriteInAndWhy()
    {
        const string Sysfs = "/sys/kernel", Target = Sysfs + "/node.pem";
        if (!OperatingSystem.IsLinux() || !Directory.Exists(Sysfs))
        {
            return;
        }
        var link = _directory.File("node.pem");
        File.CreateSymbolicLink(link, Target);

        var forced = await PassageProcess.RunAsync(["keygen", "--out", link, "--force"], Timeout);
        var created = await PassageProcess.RunAsync(["keygen", "--out", Target], Timeout);

        Assert.Equal(1, forced.ExitCode);
        Assert.Matches(
            $"^passage keygen: '{Regex.Escape(link)}' \\(the symbolic link leads to '{Target}'\\) cannot be written: nothing can be created in '{Sysfs}' \\((Permission denied|Read-only file system)\\), where the new key is first written beside the old one, then renamed over it\\.$",
            forced.StandardError.Trim());
        Assert.Equal(1, created.ExitCode);
        Assert.Matches(
            $"^passage keygen: '{Target}' cannot be written: nothing can be created in '{Sysfs}' \\((Permission denied|Read-only file system)\\)\\.$",
            created.StandardError.Trim());
    }

    /// <summary>
    /// A key file that was created but could not be written (a full disk; here a file size limit, EFBIG) was left behind
    /// empty, where the next keygen refused it as existing and a relay would read it as a broken key; and the error was
    /// the framework's "Specified file length was too large for the file system. (Parameter 'value')". Now nothing is
    /// left, the message says the writing failed and why, and --force keeps the old key whole.
    /// </summary>
    [Fact]
    public async Task A_key_that_cannot_be_written_once_created_is_not_left_behind()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var path = _directory.File("node.pem");
        await using (var fresh = PassageProcess.Start(["keygen", "--out", path], noFileGrowth: true))
        {
            await fresh.WaitForExitAsync(Timeout);
            Assert.Equal(1, fresh.ExitCode);
            Assert.Equal($"passage keygen: '{path}' cannot be written: writing it in '{_directory.Path}' failed (File too large).", fresh.StandardError.Trim());
        }
        Assert.Empty(Directory.GetFileSystemEntries(_directory.Path));

        Assert.Equal(0, (await PassageProcess.RunAsync(["keygen", "--out", path], Timeout)).ExitCode);
        var key = await File.ReadAllBytesAsync(path);
        await using (var forced = PassageProcess.Start(["keygen", "--out", path, "--force"], noFileGrowth: true))
        {
            await forced.WaitForExitAsync(Timeout);
            Assert.Equal(1, forced.ExitCode);
            Assert.StartsWith($"passage keygen: '{path}' cannot be written: writing it in '{_directory.Path}' failed (File too large), where", forced.StandardError.Trim());
        }
        Assert.Equal(key, await File.ReadAllBytesAsync(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(_directory.Path));
    }

    /// <summary>A file where the key's directory should be was reported as "The file '...' already exists".</summary>
    [Fact]
    public async Task KeygenSaysWhenAFileStandsWhereItsDirectoryShouldBe()
    {
        var file = _directory.File("keys");
        await File.WriteAllTextAsync(file, "").WaitAsync(Timeout);

        var result = await PassageProcess.RunAsync(["keygen", "--out", Path.Combine(file, "relay", "node.pem")], Timeout);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal($"passage keygen: '{file}' is a file, not a directory, so nothing can be written in it.", result.StandardError.Trim());
    }

    [Fact]
    public async Task KeygenRefusesABadName()
    {
        var path = _directory.File("node.pem");

        var result = await PassageProcess.RunAsync(["keygen", "--out", path, "--name", "not a name"], Timeout);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("'not a name'", result.StandardError, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public async Task IdReportsAMissingOrUnusableFileOnStandardError()
    {
        var missing = _directory.File("absent.pem");
        var junk = _directory.File("junk.pem");
        await File.WriteAllTextAsync(junk, "not a key").WaitAsync(Timeout);

        var absent = await PassageProcess.RunAsync(["id", missing], Timeout);
        var bad = await PassageProcess.RunAsync(["id", junk], Timeout);

        Assert.Equal(1, absent.ExitCode);
        Assert.Contains($"'{missing}' does not exist", absent.StandardError, StringComparison.Ordinal);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("not a PEM file", bad.StandardError, StringComparison.Ordinal);
        Assert.Equal("", bad.StandardOutput);
    }

    /// <summary>An empty file name (an unset shell variable) ended <c>passage id</c> in a stack trace.</summary>
    [Fact]
    public async Task AnEmptyFileNameIsOneLineNotAStack()
    {
        var id = await PassageProcess.RunAsync(["id", ""], Timeout);
        var keygen = await PassageProcess.RunAsync(["keygen", "--out", ""], Timeout);

        Assert.Equal(1, id.ExitCode);
        Assert.Equal("passage id: the file name is empty", id.StandardError.Trim());
        Assert.Equal(1, keygen.ExitCode);
        Assert.Equal("passage keygen: the file name (--out) is empty", keygen.StandardError.Trim());
    }

    [Theory]
    [InlineData("keygen", "--out", "--force", "--name")]
    [InlineData("id", "FILE", "node ID", "certificate")]
    public async Task HelpDescribesTheCommand(string command, string first, string second, string third)
    {
        var help = await PassageProcess.RunAsync([command, "--help"], Timeout);

        Assert.Equal(0, help.ExitCode);
        Assert.Contains(first, help.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(second, help.StandardOutput, StringComparison.Ordinal);
        Assert.Contains(third, help.StandardOutput, StringComparison.Ordinal);
    }
}
