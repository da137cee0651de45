using System.Globalization;
using System.Net.Sockets;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// Whether a test that needs root can run here: Linux, root, and the capabilities it needs in the process's effective set
/// (a container's root lacks CAP_SYS_ADMIN and CAP_NET_ADMIN unless given them, and root alone is then not enough).
/// </summary>
internal static class Privileges
{
    // Capability numbers, linux/capability.h.
    internal const int NetAdmin = 12;
    internal const int SysAdmin = 21;

    /// <summary>Why <paramref name="what"/> (<c>a mount namespace</c>) cannot be had here, null when it can.</summary>
    public static string? WhyNot(string what, params int[] capabilities) =>
        !OperatingSystem.IsLinux() ? $"{what} needs Linux"
        : !Environment.IsPrivilegedProcess ? $"{what} needs root"
        : !HasCapabilities(capabilities)
            ? $"{what} needs {string.Join(" and ", capabilities.Select(Name))}, which this root lacks (a container's, say)"
        : null;

    private static string Name(int capability) => capability switch
    {
        NetAdmin => "CAP_NET_ADMIN",
        SysAdmin => "CAP_SYS_ADMIN",
        _ => $"capability {capability}",
    };

    // Whether the process's effective set (the CapEff line of /proc/self/status, a hexadecimal mask) holds each capability.
    private static bool HasCapabilities(int[] capabilities)
    {
        var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
        return line is not null
            && ulong.TryParse(line.AsSpan("CapEff:".Length).Trim(), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var effective)
            && capabilities.All(c => (effective & (1UL << c)) != 0);
    }
}

/// <summary>
/// A fact that needs root; skipped, saying why, elsewhere, so that a run where the check did not happen says so rather
/// than passing.
/// </summary>
internal sealed class RootFactAttribute : FactAttribute
{
    /// <summary>A fact that needs root for <paramref name="what"/>, which the skip reason names.</summary>
    public RootFactAttribute(string what) => Skip = Privileges.WhyNot(what);
}

/// <summary>
/// A fact that runs the program in a mount namespace of its own (<c>unshare --mount</c>, a resolv.conf or hosts file of
/// its own): root with CAP_SYS_ADMIN, and unshare(1); with <see cref="Ipv6"/>, IPv6 too. Skipped, saying why, elsewhere.
/// </summary>
internal sealed class MountNamespaceFactAttribute : FactAttribute
{
    /// <summary>A fact that needs a mount namespace for <paramref name="what"/>, which the skip reason names.</summary>
    public MountNamespaceFactAttribute(string what) =>
        Skip = Privileges.WhyNot(what, Privileges.SysAdmin) ?? (File.Exists("/usr/bin/unshare") ? null : $"{what} needs unshare(1)");

    /// <summary>Whether the test needs IPv6 as well.</summary>
    public bool Ipv6
    {
        get => false;
        init
        {
            if (value && Skip is null && !Socket.OSSupportsIPv6)
            {
                Skip = "this test needs IPv6";
            }
        }
    }
}
