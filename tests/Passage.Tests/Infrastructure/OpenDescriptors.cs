namespace Passage.Tests.Infrastructure;

/// <summary>A process's open descriptors, read from <c>/proc/PID/fd</c> (Linux).</summary>
internal static class OpenDescriptors
{
    /// <summary>What each open descriptor of process <paramref name="pid"/> ("self" for this one) points at, read at once (e.g. <c>pipe:[123]</c>).</summary>
    public static List<string> Targets(string pid) =>
        Directory.GetFiles($"/proc/{pid}/fd").Select(fd => new FileInfo(fd).LinkTarget ?? "").ToList();

    /// <summary>How many open descriptors of process <paramref name="pid"/> point at a target starting with <paramref name="prefix"/>.</summary>
    public static int Count(int pid, string prefix) =>
        Targets(pid.ToString(System.Globalization.CultureInfo.InvariantCulture)).Count(t => t.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>The highest descriptor number process <paramref name="pid"/> has open.</summary>
    public static int Highest(int pid) =>
        Directory.GetFiles($"/proc/{pid}/fd").Max(fd => int.Parse(Path.GetFileName(fd), System.Globalization.CultureInfo.InvariantCulture));
}
