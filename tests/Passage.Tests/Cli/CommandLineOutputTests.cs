using System.Diagnostics;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>
/// What the commands do when their standard output cannot be written (closed, as <c>passage relay &gt;&amp;-</c>, or a full
/// disk, <c>&gt; /dev/full</c>), and what they say of a command line that does not parse.
/// </summary>
public sealed class CommandLineOutputTests
{
    /// <summary>
    /// The relay prints its node ID and a curl command once it listens. With standard output closed, that write failed, the
    /// exception ended the running relay with a stack trace and exit code 1.
    /// </summary>
    [Fact]
    public async Task A_relay_whose_standard_output_is_closed_keeps_running()
    {
        using var directory = new TemporaryDirectory();
        using var relay = Start(">&-", directory.Path, "relay", "--connect", "127.0.0.1:0", "--key", directory.File("relay.pem"));
        try
        {
            await StopsAfterListening(relay);
        }
        finally
        {
            if (!relay.HasExited)
            {
                relay.Kill();
            }
        }
    }

    private static async Task StopsAfterListening(Process relay)
    {
        var stderr = new System.Text.StringBuilder();
        string? line;
        while ((line = await relay.StandardError.ReadLineAsync().WaitAsync(Timeouts.Default)) is not null && !line.Contains("connect listening on", StringComparison.Ordinal))
        {
            stderr.AppendLine(line);
        }
        Assert.True(line is not null, $"the relay ended before it listened:\n{stderr}");

        using (var kill = Process.Start("kill", ["-TERM", relay.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }
        var rest = await relay.StandardError.ReadToEndAsync().WaitAsync(Timeouts.Default);
        await relay.WaitForExitAsync().WaitAsync(Timeouts.Default);

        Assert.DoesNotContain("Unhandled exception", rest);
        Assert.True(relay.ExitCode == 0, $"exit code {relay.ExitCode}:\n{rest}");
        Assert.Contains("connect stopped", rest);
    }

    [Fact]
    public async Task Config_check_that_cannot_print_the_settings_says_so_without_a_stack()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "relay": { "passthrough": ["127.0.0.1:0"], "upstream": "127.0.0.1:1" } }""");

        var (exit, stderr) = await RunAsync(">&-", directory.Path, "config", "check", file);

        Assert.Equal(1, exit);
        Assert.Contains("passage config check: the settings are valid, but they cannot be written to standard output: Bad file descriptor", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    /// <summary>
    /// <c>passage keygen</c> writes the key, then prints its node ID. When the printing failed, it said "Access to the path is
    /// denied." as if the key file could not be written: a retry was then refused (the file exists) or, with --force,
    /// replaced the key.
    /// </summary>
    [Fact]
    public async Task Keygen_that_cannot_print_the_node_ID_says_the_key_was_written()
    {
        using var directory = new TemporaryDirectory();
        var key = directory.File("node.pem");

        var (exit, stderr) = await RunAsync(">&-", directory.Path, "keygen", "--out", key);

        Assert.Equal(1, exit);
        Assert.True(File.Exists(key));
        Assert.Contains($"passage keygen: '{key}' was written, but its node ID cannot be written to standard output (Bad file descriptor); `passage id {key}` prints it", stderr);

        var (full, fullError) = await RunAsync("> /dev/full", directory.Path, "id", key);
        Assert.Equal(1, full);
        Assert.Contains("passage id: the node ID cannot be written to standard output: No space left on device", fullError);
    }

    /// <summary>
    /// A command line that does not parse: the parser printed the whole help (forty lines, to standard output), then its
    /// error, which did not say what the flag wants nor which flag was meant.
    /// </summary>
    [Fact]
    public async Task A_flag_that_does_not_parse_is_said_on_standard_error_with_what_it_wants()
    {
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--connect-timeout"]);
        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.Contains("passage relay: Required argument missing for option: '--connect-timeout'.", stderr);
        Assert.Contains("  --connect-timeout <DURATION>: Time to resolve and connect to an upstream.", stderr);
        Assert.Contains("See 'passage relay --help'.", stderr);

        var (typo, typoOut, typoError) = await PassageProcess.RunAsync(["client", "--sock", "127.0.0.1:0"]);
        Assert.Equal(1, typo);
        Assert.Equal("", typoOut);
        Assert.Contains("passage client: Unrecognized command or argument '--sock'.", typoError);
        Assert.Contains("did you mean --socks?", typoError);
        Assert.DoesNotContain("Usage:", typoError);

        var (check, _, checkError) = await PassageProcess.RunAsync(["config", "check"]);
        Assert.Equal(1, check);
        Assert.Contains("See 'passage config check --help'.", checkError);
    }

    /// <summary>Runs <c>passage ARGS</c> with standard output redirected by the shell (<paramref name="redirection"/>); its exit code and standard error.</summary>
    private static async Task<(int ExitCode, string StandardError)> RunAsync(string redirection, string workingDirectory, params string[] args)
    {
        using var process = Start(redirection, workingDirectory, args);
        var stderr = await process.StandardError.ReadToEndAsync().WaitAsync(Timeouts.Default);
        await process.WaitForExitAsync().WaitAsync(Timeouts.Default);
        return (process.ExitCode, stderr);
    }

    /// <summary>
    /// Starts <c>passage ARGS</c> through a shell that applies <paramref name="redirection"/> to standard output and becomes
    /// the program (one process, one PID); its standard error is read by the caller.
    /// </summary>
    private static Process Start(string redirection, string workingDirectory, params string[] args)
    {
        var info = new ProcessStartInfo("/bin/sh")
        {
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add($"exec \"$0\" \"$@\" {redirection}");
        info.ArgumentList.Add("dotnet");
        info.ArgumentList.Add(PassageProcess.EntryAssembly);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        return Process.Start(info)!;
    }
}
