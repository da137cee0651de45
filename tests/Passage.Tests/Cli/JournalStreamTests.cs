using Passage.Cli.Hosting;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>
/// The journal's format is the default only where standard error is the stream <c>JOURNAL_STREAM</c> names
/// (systemd.exec(5)): a shell or a command started from within a service inherits the variable with its output elsewhere.
/// </summary>
public sealed class JournalStreamTests
{
    [Theory]
    [InlineData("8:12345", true, "socket:[12345]", true)]
    [InlineData("8:12345", true, "socket:[54321]", false)]
    [InlineData("8:12345", true, "pipe:[12345]", false)]
    [InlineData("8:12345", true, "/dev/pts/0", false)]
    [InlineData("8:12345", true, null, false)]
    [InlineData("garbage", true, "socket:[12345]", false)]
    [InlineData("8:-1", true, "socket:[-1]", false)]
    [InlineData(null, true, "socket:[12345]", false)]
    [InlineData("", false, null, false)]
    // No /proc to read standard error from: the variable alone, as before.
    [InlineData("8:12345", false, null, true)]
    public void Standard_error_is_the_journal_only_when_it_is_the_stream_named(string? journalStream, bool readable, string? target, bool journal) =>
        Assert.Equal(journal, LoggingSetup.IsJournal(journalStream, (readable, target)));

    [Fact]
    public async Task A_relay_that_inherited_JOURNAL_STREAM_with_its_output_elsewhere_logs_plain_text()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "127.0.0.1:0", "--key", directory.File("relay.pem")],
            new Dictionary<string, string?> { ["JOURNAL_STREAM"] = "1:1" });
        var line = await relay.WaitForLineAsync(l => l.Contains("connect listening on", StringComparison.Ordinal));
        Assert.DoesNotContain("<6>", line);
        Assert.Matches(@"^\d{4}-\d\d-\d\dT", line);
    }
}
