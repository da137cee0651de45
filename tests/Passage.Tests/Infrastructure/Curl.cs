using System.Diagnostics;

namespace Passage.Tests.Infrastructure;

/// <summary>The real curl binary, run with a time limit.</summary>
internal static class Curl
{
    public static Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(params string[] args) => RunInAsync(null, args);

    /// <summary>
    /// As <see cref="RunAsync"/>, inside the network namespace <paramref name="networkNamespace"/> when given
    /// (<c>ip netns exec</c>, see <see cref="NetworkNamespace"/>).
    /// </summary>
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunInAsync(string? networkNamespace, params string[] args)
    {
        using var process = Process.Start(StartInfo(networkNamespace, ["--silent", "--show-error", "--max-time", "20", .. args]))!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await process.WaitForExitAsync(cts.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    /// <summary>
    /// How to start <c>curl ARGS</c> (in <paramref name="networkNamespace"/> when given), its output redirected. It reads no
    /// curlrc (<c>-q</c>, which must come first): a <c>proxy</c>, <c>user-agent</c> or <c>header</c> line in the machine's
    /// would change what it sends. The proxy variables are not in the test process's environment (<see cref="MachineEnvironment"/>).
    /// </summary>
    public static ProcessStartInfo StartInfo(string? networkNamespace, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(networkNamespace is null ? "curl" : "ip")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (networkNamespace is not null)
        {
            info.ArgumentList.Add("netns");
            info.ArgumentList.Add("exec");
            info.ArgumentList.Add(networkNamespace);
            info.ArgumentList.Add("curl");
        }
        info.ArgumentList.Add("-q");
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        return info;
    }
}
