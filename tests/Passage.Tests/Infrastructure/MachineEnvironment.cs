using System.Runtime.CompilerServices;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// The variables of this machine's environment that would change what a test sees, which no test means to inherit, removed
/// from the test process before any test runs: Passage's own settings (<c>PASSAGE__</c>) and those one underscore short,
/// which it refuses; the service manager's, by which it would write its log for the journal and notify a socket; the
/// resolver's (<c>LOCALDOMAIN</c>, <c>RES_OPTIONS</c>), which the relay's stub resolver honours as the C library does; and
/// the proxy variables, which HttpClient's default proxy and curl honour, so that a request meant to go straight to a
/// listener on loopback would go to whatever proxy the machine names, and fail, or pass for the wrong reason.
/// </summary>
/// <remarks>
/// Removed from the test process itself, not only from the processes it starts: settings readers and hosts built in the
/// test read the process's environment, and every process a test starts (passage, curl, a shell) inherits it. A test that
/// wants one of these variables gives it, to the process it starts or to the reader it builds.
/// </remarks>
internal static class MachineEnvironment
{
    private static readonly string[] Exact =
    [
        "JOURNAL_STREAM", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LOCALDOMAIN", "RES_OPTIONS",
        "http_proxy", "https_proxy", "all_proxy", "no_proxy",
    ];

    /// <summary>Of <paramref name="names"/>, those <see cref="MachineEnvironment"/> removes (the proxy variables in either case).</summary>
    private static List<string> Unwanted(IEnumerable<string> names) =>
        names.Where(name => name.StartsWith("PASSAGE_", StringComparison.OrdinalIgnoreCase)
            || Exact.Contains(name, StringComparer.OrdinalIgnoreCase)).ToList();

    /// <summary>Removes the <see cref="Unwanted"/> variables from this process's environment when the test assembly loads.</summary>
#pragma warning disable CA2255 // The test assembly is loaded by the test host alone; this must run before any test reads the environment.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Forget()
    {
        foreach (var name in Unwanted(Environment.GetEnvironmentVariables().Keys.Cast<string>()))
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }
}
