using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>Flags given as <c>NAME=VALUE</c> or <c>USER:PASSWORD</c> pairs, repeatable, read into a map of settings.</summary>
public sealed class FlagPairsTests
{
    /// <summary>
    /// A pair's name given twice, in the same case or another (settings' keys ignore case, as a file's do): one error naming
    /// the flag and the name, exit 1, no stack trace. The configuration takes each key once, and threw.
    /// </summary>
    [Fact]
    public async Task A_relay_pair_named_twice_is_one_error_naming_the_flag()
    {
        using var directory = new TemporaryDirectory();
        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["relay", "--passthrough", "127.0.0.1:0", "--route", "a.example=b.example:443", "--route", "A.example=c.example:443",
             "--map", "m.example=192.0.2.1", "--map", "m.example=192.0.2.2"]);

        Assert.Equal(1, exit);
        Assert.Contains("2 errors; nothing was started", stderr);
        Assert.Contains("--route 'A.example': given twice", stderr);
        Assert.Contains("--map 'm.example': given twice", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    /// <summary>A proxy user given twice is said by name, never with either password.</summary>
    [Fact]
    public async Task A_client_user_named_twice_is_an_error_that_shows_no_password()
    {
        using var identity = Passage.Identity.NodeIdentity.Create();
        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["client", "--relay", $"{identity.NodeId}@127.0.0.1:1", "--socks", "127.0.0.1:0", "--http", "off",
             "--socks-user", "alice:first-secret", "--socks-user", "alice:second-secret"]);

        Assert.Equal(1, exit);
        Assert.Contains("--socks-user 'alice': given twice", stderr);
        Assert.DoesNotContain("first-secret", stderr);
        Assert.DoesNotContain("second-secret", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }
}
