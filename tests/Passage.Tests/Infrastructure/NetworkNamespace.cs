using System.Diagnostics;
using System.Globalization;
using System.Net;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A network namespace of its own, joined to the test's namespace by a veth pair on a /30 of 10.213.0.0/16: a host with
/// an address of its own, where on loopback every client, relay and destination is 127.0.0.1. The test's end of the
/// pair holds <see cref="HostAddress"/>, the namespace's end <see cref="Address"/>. Needs root with the capabilities to
/// make one, and iproute2, on Linux (<see cref="WhyUnavailable"/>; tests skip, saying so, with
/// <see cref="NetworkNamespaceFactAttribute"/>). The namespace and both ends of the pair are deleted on dispose, whatever
/// the test did.
/// </summary>
internal sealed class NetworkNamespace : IDisposable
{
    // Tests run in parallel, in this process and in others on the same machine: every name and subnet is drawn at random.
    private const int Attempts = 8;

    private readonly string _hostInterface;
    private int _disposed;

    private NetworkNamespace(string name, string hostInterface, IPAddress hostAddress, IPAddress address)
    {
        Name = name;
        _hostInterface = hostInterface;
        HostAddress = hostAddress;
        Address = address;
    }

    /// <summary>The namespace's name, for <c>ip netns exec</c>.</summary>
    public string Name { get; }

    /// <summary>The address of the test's end of the pair: where servers that the namespace is to reach listen.</summary>
    public IPAddress HostAddress { get; }

    /// <summary>The address of the namespace's end: what a server in the test's namespace sees a client in it come from.</summary>
    public IPAddress Address { get; }

    // Read before WhyUnavailable, which is initialized from it.
    private static string? IpProgram { get; } =
        new[] { "/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip" }.FirstOrDefault(File.Exists);

    /// <summary>Whether namespaces can be made here (see <see cref="WhyUnavailable"/>).</summary>
    public static bool IsAvailable => WhyUnavailable is null;

    /// <summary>
    /// Why no namespace can be made here, null when one can: it takes Linux, the <c>ip</c> program, and root with
    /// CAP_SYS_ADMIN (<c>ip netns add</c> mounts) and CAP_NET_ADMIN (the veth pair). Root alone is not enough: a
    /// container's root lacks both unless given them, and every <c>ip netns add</c> there fails.
    /// </summary>
    public static string? WhyUnavailable { get; } =
        Privileges.WhyNot("a network namespace", Privileges.SysAdmin, Privileges.NetAdmin)
        ?? (IpProgram is null ? "a network namespace needs iproute2 (the ip program)" : null);

    /// <summary>Creates a namespace with its end of a fresh veth pair up, and the test's end up beside it.</summary>
    public static NetworkNamespace Create()
    {
        if (!IsAvailable)
        {
            throw new InvalidOperationException(WhyUnavailable);
        }
        var (hostAddress, address) = FreeSubnet();
        var suffix = Convert.ToHexStringLower(BitConverter.GetBytes(Random.Shared.Next()));
        // Interface names hold at most 15 characters.
        var created = new NetworkNamespace("passage-" + suffix, "pg" + suffix + "h", hostAddress, address);
        var inside = "pg" + suffix + "n";
        try
        {
            Ip("netns", "add", created.Name);
            Ip("link", "add", created._hostInterface, "type", "veth", "peer", "name", inside, "netns", created.Name);
            Ip("address", "add", $"{hostAddress}/30", "dev", created._hostInterface);
            Ip("link", "set", created._hostInterface, "up");
            Ip("-n", created.Name, "address", "add", $"{address}/30", "dev", inside);
            Ip("-n", created.Name, "link", "set", inside, "up");
            Ip("-n", created.Name, "link", "set", "lo", "up");
            return created;
        }
        catch
        {
            created.Dispose();
            throw;
        }
    }

    /// <summary>Runs curl inside the namespace (see <see cref="Curl"/>).</summary>
    public Task<(int ExitCode, string StandardOutput, string StandardError)> CurlAsync(params string[] args) => Curl.RunInAsync(Name, args);

    // A /30 no interface of this host has an address in yet: .1 for the test's end, .2 for the namespace's.
    private static (IPAddress Host, IPAddress Inside) FreeSubnet()
    {
        var taken = Ip("-o", "-4", "address", "show");
        for (var attempt = 0; attempt < Attempts; attempt++)
        {
            var third = Random.Shared.Next(0, 256);
            var fourth = Random.Shared.Next(0, 64) * 4;
            var prefix = string.Create(CultureInfo.InvariantCulture, $"10.213.{third}.");
            if (!Enumerable.Range(fourth, 4).Any(last => taken.Contains($" {prefix}{last}/", StringComparison.Ordinal)))
            {
                return (IPAddress.Parse(prefix + (fourth + 1)), IPAddress.Parse(prefix + (fourth + 2)));
            }
        }
        throw new InvalidOperationException($"no free /30 in 10.213.0.0/16 after {Attempts} draws:\n{taken}");
    }

    private static string Ip(params string[] args)
    {
        var (exitCode, output) = TryIp(args);
        return exitCode == 0 ? output : throw new InvalidOperationException($"ip {string.Join(' ', args)} failed ({exitCode}): {output}");
    }

    private static (int ExitCode, string Output) TryIp(params string[] args)
    {
        var info = new ProcessStartInfo(IpProgram!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(Timeouts.Default))
        {
            process.Kill();
            return (-1, $"no exit within {Timeouts.Default}");
        }
        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    /// <summary>Deletes the namespace (which deletes its end of the pair, and with it the other) and the test's end, should it be left.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        var namespaceGone = TryIp("netns", "delete", Name);
        var hostEndGone = TryIp("link", "delete", _hostInterface);
        var hostEndLeft = TryIp("link", "show", _hostInterface).ExitCode == 0;
        if (hostEndLeft || TryIp("netns", "list").Output.Contains(Name, StringComparison.Ordinal))
        {
            throw new InvalidOperationException(
                $"namespace {Name} or interface {_hostInterface} left behind: {namespaceGone.Output} {hostEndGone.Output}");
        }
    }
}
