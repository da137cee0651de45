using System.Diagnostics;

namespace Passage.Tests.Infrastructure;

/// <summary>The real curl binary, run with a time limit.</summary>
internal static class Curl
{
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(params string[] args)
    {
        var info = new ProcessStartInfo("curl")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("--silent");
        info.ArgumentList.Add("--show-error");
        info.ArgumentList.Add("--max-time");
        info.ArgumentList.Add("20");
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }
}
