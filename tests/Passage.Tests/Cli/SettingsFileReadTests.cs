using Passage.Cli.Hosting;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>A settings file that cannot be opened or read is said to be so, not to be broken JSON.</summary>
public sealed class SettingsFileReadTests
{
    [Fact]
    public void A_settings_file_behind_a_loop_of_links_cannot_be_read_and_is_not_called_invalid_JSON()
    {
        using var directory = new TemporaryDirectory();
        var first = directory.File("a.json");
        var second = directory.File("b.json");
        File.CreateSymbolicLink(first, second);
        File.CreateSymbolicLink(second, first);

        var (_, errors) = CliSettings.Build(first, []);

        var error = Assert.Single(errors);
        Assert.StartsWith($"{first}: cannot be read: ", error);
        Assert.DoesNotContain("JSON", error);
    }

    [Fact]
    public void A_settings_file_whose_reading_fails_cannot_be_read_and_is_not_called_invalid_JSON()
    {
        // A regular file by its status whose reading fails at once (EIO): the process's own memory, read from its start.
        var (_, errors) = CliSettings.Build("/proc/self/mem", []);

        var error = Assert.Single(errors);
        Assert.StartsWith("/proc/self/mem: cannot be read: ", error);
        Assert.DoesNotContain("JSON", error);
    }
}
