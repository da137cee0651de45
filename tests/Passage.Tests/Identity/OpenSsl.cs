using System.Diagnostics;

namespace Passage.Tests.Identity;

/// <summary>The <c>openssl</c> command line, run as a real process with a bounded wait, as an independent check.</summary>
internal static class OpenSsl
{
    private static readonly Lazy<bool> Present = new(() =>
    {
        try
        {
            return RunAsync("openssl", ["version"]).GetAwaiter().GetResult().ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    });

    public static bool IsAvailable => Present.Value;

    /// <summary>Runs a <c>bash -c</c> pipeline (with pipefail) and returns its trimmed standard output; fails the test on a non-zero exit.</summary>
    public static async Task<string> PipelineAsync(string script)
    {
        var (exitCode, output, error) = await RunAsync("bash", ["-c", "set -euo pipefail; " + script]);
        Assert.True(exitCode == 0, $"'{script}' exited with {exitCode}: {error}");
        return output.Trim();
    }

    public static async Task<(int ExitCode, string Output, string Error)> RunAsync(string program, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var output = process.StandardOutput.ReadToEndAsync(timeout.Token);
        var error = process.StandardError.ReadToEndAsync(timeout.Token);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish in 30 seconds.");
        }
        return (process.ExitCode, await output, await error);
    }
}
