using Passage.Tests.Configuration;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary><c>passage keygen --out</c> naming something that is no regular file.</summary>
public sealed class KeygenTargetTests
{
    /// <summary>
    /// A FIFO (as a device: <c>/dev/null</c>, or <c>/dev/stdout</c>'s terminal) is left as it is, with or without --force, and
    /// through a link: the key was renamed over it, and without --force the refusal offered --force. Said as what it is.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task Keygen_leaves_a_FIFO_in_place_and_says_what_it_is(bool force, bool throughLink)
    {
        using var directory = new TemporaryDirectory();
        var fifo = InputFileTests.MakeFifo(directory.Path, "key.pem");
        var path = fifo;
        if (throughLink)
        {
            path = directory.File("link.pem");
            File.CreateSymbolicLink(path, fifo);
        }

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(force ? ["keygen", "--out", path, "--force"] : ["keygen", "--out", path]);

        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.Contains($"'{path}' is a FIFO (named pipe), not a regular file", stderr);
        Assert.DoesNotContain("Use --force", stderr);
        Assert.Equal(Passage.Configuration.FileKind.Fifo, Passage.Configuration.InputFile.Stat(fifo).Kind);
    }
}
