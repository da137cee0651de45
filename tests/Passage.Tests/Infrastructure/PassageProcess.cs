using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// The real <c>passage</c> program, run as a child process from the test output folder.
/// Every wait has a timeout so a broken build or a hung relay fails the test instead of hanging it.
/// </summary>
internal sealed partial class PassageProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = new();
    private readonly TaskCompletionSource _stdoutClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _stderrClosed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;
    private volatile bool _readingStandardError;

    private PassageProcess(Process process) => _process = process;

    /// <summary>Path of the program's entry assembly next to the tests.</summary>
    public static string EntryAssembly => Path.Combine(AppContext.BaseDirectory, "Passage.Cli.dll");

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    public int ExitCode => _process.ExitCode;

    public string StandardOutput { get { lock (_stdout) { return _stdout.ToString(); } } }

    public string StandardError { get { lock (_stderr) { return _stderr.ToString(); } } }

    /// <summary>Everything the process printed so far, both streams, for assertion messages.</summary>
    public string Output => $"--- stdout ---\n{StandardOutput}\n--- stderr ---\n{StandardError}";

    /// <summary>
    /// Starts <c>passage ARGS</c>, in the test process's environment, which holds none of the machine's variables that would
    /// change what it does (<see cref="MachineEnvironment"/>).
    /// Environment entries with a null value are removed. With
    /// <paramref name="readStandardError"/> false nothing reads its standard error, as under a stalled log
    /// reader: once the pipe's buffer is full, a write to it waits (<see cref="StandardError"/> stays empty
    /// until <see cref="StartReadingStandardError"/>). With <paramref name="openFiles"/> it starts under that
    /// limit on open files (soft and hard, as <c>ulimit -Sn</c>/<c>-Hn</c> would set them). With
    /// <paramref name="unprivileged"/> (the test running as root) it runs as the user nobody, without capabilities,
    /// as the systemd unit's relay does (<see cref="WhyNotUnprivileged"/> says why that does not work here). With
    /// <paramref name="resolvConf"/> (root only) it runs in a mount namespace of its own in which that file is
    /// /etc/resolv.conf, so the C library's resolver asks the servers it names; with <paramref name="hostsFile"/> (root only)
    /// likewise, that file is /etc/hosts. With <paramref name="noFileGrowth"/> no file it writes may grow
    /// (<c>ulimit -f 0</c>): a write to one fails with EFBIG, as one to a full disk fails with ENOSPC (SIGXFSZ ignored; the
    /// runtime's double-mapped code memory, a file of its own, is turned off so that it can start at all).
    /// </summary>
    public static PassageProcess Start(
        IEnumerable<string> args, IDictionary<string, string?>? environment = null, string? workingDirectory = null, bool readStandardError = true,
        (int Soft, int Hard)? openFiles = null, bool unprivileged = false, string? resolvConf = null, string? hostsFile = null,
        bool noFileGrowth = false)
    {
        var mounted = resolvConf is not null || hostsFile is not null;
        var wrapped = openFiles is not null || unprivileged || mounted || noFileGrowth;
        var info = new ProcessStartInfo(mounted ? "unshare" : wrapped ? "/bin/sh" : "dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? AppContext.BaseDirectory,
        };
        if (mounted)
        {
            // unshare(1) without --fork becomes the shell, which becomes dotnet: one process, one PID throughout.
            info.ArgumentList.Add("--mount");
            info.ArgumentList.Add("--propagation=private");
            info.ArgumentList.Add("/bin/sh");
        }
        if (wrapped)
        {
            // The shell sets the limit and becomes dotnet (same process, same PID), through setpriv when unprivileged.
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add(
                (resolvConf is not null ? $"mount --bind '{resolvConf}' /etc/resolv.conf && " : "")
                + (hostsFile is not null ? $"mount --bind '{hostsFile}' /etc/hosts && " : "")
                + (openFiles is { } limit ? $"ulimit -Sn {limit.Soft} && ulimit -Hn {limit.Hard} && " : "")
                + (noFileGrowth ? "trap '' XFSZ && ulimit -f 0 && " : "")
                + "exec " + (unprivileged ? SetprivNobody + " " : "") + "\"$0\" \"$@\"");
            info.ArgumentList.Add("dotnet");
        }
        info.ArgumentList.Add(EntryAssembly);
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        info.Environment["DOTNET_NOLOGO"] = "1";
        if (noFileGrowth)
        {
            info.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        }
        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                info.Environment.Remove(key);
            }
            else
            {
                info.Environment[key] = value;
            }
        }

        var process = new Process { StartInfo = info, EnableRaisingEvents = true };
        var result = new PassageProcess(process);
        process.OutputDataReceived += (_, e) => result.OnLine(e.Data, result._stdout, result._stdoutClosed);
        process.ErrorDataReceived += (_, e) => result.OnLine(e.Data, result._stderr, result._stderrClosed);
        process.Start();
        process.BeginOutputReadLine();
        if (readStandardError)
        {
            result.StartReadingStandardError();
        }
        return result;
    }

    // User and group nobody, no supplementary groups; changing the user from root clears every capability.
    private const string SetprivNobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";

    /// <summary>
    /// Why <see cref="Start"/> cannot run the program as nobody here, null when it can: the tests must run as root, setpriv(1)
    /// must be there, and nobody must reach the program and the runtime (a checkout under a private home directory, or one
    /// built under a umask of 077, would not let it). Found once per run.
    /// </summary>
    public static string? WhyNotUnprivileged => NotUnprivileged.Value;

    private static readonly Lazy<string?> NotUnprivileged = new(() =>
    {
        if (Privileges.WhyNot("running the program as the user nobody") is { } why)
        {
            return why;
        }
        try
        {
            var info = new ProcessStartInfo("/bin/sh") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add("-c");
            info.ArgumentList.Add($"command -v setpriv >/dev/null || exit 2; {SetprivNobody} dotnet --list-runtimes >/dev/null && exec {SetprivNobody} test -r \"$0\"");
            info.ArgumentList.Add(EntryAssembly);
            using var check = Process.Start(info)!;
            var error = check.StandardError.ReadToEndAsync();
            if (!check.WaitForExit(30_000))
            {
                check.Kill();
                return "the check whether the user nobody can run the program did not end in 30 s";
            }
            return check.ExitCode switch
            {
                0 => null,
                2 => "running the program as the user nobody needs setpriv(1) (util-linux)",
                _ => $"the user nobody cannot run dotnet or read {EntryAssembly}: {error.Result.Trim()}",
            };
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"the check whether the user nobody can run the program did not start: {e.Message}";
        }
    });

    /// <summary>Begins reading standard error (a process started with it unread).</summary>
    public void StartReadingStandardError()
    {
        _readingStandardError = true;
        _process.BeginErrorReadLine();
    }

    /// <summary>Runs <c>passage ARGS</c> to completion and returns its exit code and output.</summary>
    public static async Task<(int ExitCode, string StandardOutput, string StandardError)> RunAsync(
        IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string?>? environment = null)
    {
        await using var process = Start(args, environment);
        await process.WaitForExitAsync(timeout ?? TimeSpan.FromSeconds(60));
        return (process.ExitCode, process.StandardOutput, process.StandardError);
    }

    /// <summary>Waits until a line on either stream satisfies <paramref name="match"/>; returns that line.</summary>
    public Task<string> WaitForLineAsync(Func<string, bool> match, TimeSpan? timeout = null)
    {
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_waiters)
        {
            foreach (var line in (StandardOutput + "\n" + StandardError).Split('\n'))
            {
                if (match(line))
                {
                    return Task.FromResult(line);
                }
            }
            _waiters.Add((match, done));
        }
        return WithTimeout(done.Task, timeout ?? TimeSpan.FromSeconds(30), "a matching output line");
    }

    /// <summary>How many lines written to standard error so far contain <paramref name="text"/>.</summary>
    public int CountLines(string text) => StandardError.Split('\n').Count(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>Waits for the relay's "listening on ADDRESS:PORT" line of a front door (not the admin listener's) and returns the port.</summary>
    public Task<int> WaitForListeningPortAsync(string address = "127.0.0.1") =>
        WaitForPortAsync($"listening on {address}:", line => !line.Contains(AdminMarker, StringComparison.Ordinal));

    /// <summary>Waits for the "admin listening on 127.0.0.1:PORT" line and returns the port.</summary>
    public Task<int> WaitForAdminPortAsync() => WaitForPortAsync(AdminMarker + "127.0.0.1:", _ => true);

    /// <summary>
    /// Waits for a line holding <paramref name="marker"/> (<c>connect-plain listening on 10.0.0.1:</c>, say: one door among
    /// several on an address) and returns the port written right after it.
    /// </summary>
    public Task<int> WaitForPortAfterAsync(string marker) => WaitForPortAsync(marker, _ => true);

    private const string AdminMarker = "admin listening on ";

    private async Task<int> WaitForPortAsync(string marker, Func<string, bool> also)
    {
        var line = await WaitForLineAsync(l => l.Contains(marker, StringComparison.Ordinal) && also(l));
        var rest = line[(line.IndexOf(marker, StringComparison.Ordinal) + marker.Length)..];
        return int.Parse(new string(rest.TakeWhile(char.IsAsciiDigit).ToArray()), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Waits for the process to exit and for its output to be fully read.</summary>
    public async Task WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token);
            await Task.WhenAll(_stdoutClosed.Task, _readingStandardError ? _stderrClosed.Task : Task.CompletedTask).WaitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"passage did not exit within {timeout}.\n{Output}");
        }
    }

    /// <summary>Sends SIGTERM (or SIGINT, or SIGHUP), as a service manager, Ctrl-C or a closed terminal would.</summary>
    public void Signal(int signal = SigTerm)
    {
        if (!_process.HasExited && Kill(_process.Id, signal) != 0)
        {
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
        }
    }

    public const int SigHup = 1;
    public const int SigInt = 2;
    public const int SigTerm = 15;

    /// <summary>Kills the process at once (SIGKILL): no drain, no goodbye to its peers.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync(new CancellationTokenSource(Timeouts.Default).Token);
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        if (!_process.HasExited)
        {
            try
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token);
            }
            catch (Exception e) when (e is InvalidOperationException or OperationCanceledException)
            {
                // Already gone, or unkillable; nothing more a test can do.
            }
        }
        _process.Dispose();
    }

    private void OnLine(string? line, StringBuilder sink, TaskCompletionSource closed)
    {
        if (line is null)
        {
            closed.TrySetResult();
            return;
        }
        lock (sink)
        {
            sink.AppendLine(line);
        }
        lock (_waiters)
        {
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Match(line))
                {
                    _waiters[i].Done.TrySetResult(line);
                    _waiters.RemoveAt(i);
                }
            }
        }
    }

    private async Task<T> WithTimeout<T>(Task<T> task, TimeSpan timeout, string what)
    {
        try
        {
            return await task.WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Timed out after {timeout} waiting for {what}.\n{Output}");
        }
    }

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}

/// <summary>
/// A fact that runs the program as the user nobody (<see cref="PassageProcess.Start"/> with <c>unprivileged</c>); skipped,
/// saying why (<see cref="PassageProcess.WhyNotUnprivileged"/>), where that cannot be done, so that a run where the check
/// did not happen says so rather than passing.
/// </summary>
internal sealed class UnprivilegedFactAttribute : FactAttribute
{
    public UnprivilegedFactAttribute() => Skip = PassageProcess.WhyNotUnprivileged;
}
