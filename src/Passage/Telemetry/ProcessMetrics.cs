using System.Diagnostics;
using System.Globalization;
using System.Text;
using Passage.Transport;

namespace Passage.Telemetry;

/// <summary>
/// The process figures every Prometheus exporter shows under the same names (the client libraries' standard
/// <c>process_*</c> set), so that dashboards and alerts written for any service work for a relay: CPU time, resident
/// and virtual memory, open descriptors against their limit (a relay holds two or more per connection, and its caps are
/// fitted to that limit), and the start time. Read when rendered; a figure the system does not give is left out.
/// </summary>
internal static class ProcessMetrics
{
    private const string CpuSeconds = "process_cpu_seconds_total";
    private const string ResidentMemory = "process_resident_memory_bytes";
    private const string VirtualMemory = "process_virtual_memory_bytes";
    private const string OpenFds = "process_open_fds";
    private const string MaxFds = "process_max_fds";
    private const string StartTime = "process_start_time_seconds";

    /// <summary>The names of the metric families <see cref="Render"/> may write: no instrument's may be one of them.</summary>
    public static IReadOnlyList<string> Names { get; } = [CpuSeconds, ResidentMemory, VirtualMemory, OpenFds, MaxFds, StartTime];

    /// <summary>The figures in the Prometheus text format.</summary>
    public static string Render()
    {
        var text = new StringBuilder();
        using var process = Process.GetCurrentProcess();
        Append(text, CpuSeconds, "counter", "Total user and system CPU time spent in seconds.",
            Environment.CpuUsage.TotalTime.TotalSeconds);
        Append(text, ResidentMemory, "gauge", "Resident memory size in bytes.", process.WorkingSet64);
        Append(text, VirtualMemory, "gauge", "Virtual memory size in bytes.", process.VirtualMemorySize64);
        if (OpenDescriptors() is { } open)
        {
            Append(text, OpenFds, "gauge", "Number of open file descriptors.", open);
        }
        if (OpenFileLimit.Current is { } limit)
        {
            Append(text, MaxFds, "gauge", "Maximum number of open file descriptors.", limit);
        }
        Append(text, StartTime, "gauge", "Start time of the process since unix epoch in seconds.",
            new DateTimeOffset(process.StartTime.ToUniversalTime()).ToUnixTimeMilliseconds() / 1000.0);
        return text.ToString();
    }

    /// <summary>The entries of /proc/self/fd (Linux), less the one this enumeration holds open; null elsewhere.</summary>
    private static long? OpenDescriptors()
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            long count = 0;
            foreach (var _ in Directory.EnumerateFileSystemEntries("/proc/self/fd"))
            {
                count++;
            }
            return count - 1;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void Append(StringBuilder text, string name, string type, string help, double value) =>
        text.Append("# HELP ").Append(name).Append(' ').Append(help).Append('\n')
            .Append("# TYPE ").Append(name).Append(' ').Append(type).Append('\n')
            .Append(name).Append(' ').Append(value.ToString("R", CultureInfo.InvariantCulture)).Append('\n');
}
