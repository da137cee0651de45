using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// A network namespace of its own, joined to the test's namespace by a veth pair on a /30 of 10.213.0.0/16: a host with
/// an address of its own, where on loopback every client, relay and destination is 127.0.0.1. The test's end of the
/// pair holds <see cref="HostAddress"/>, the namespace's end <see cref="Address"/>. Needs root with the capabilities to
/// make one, and iproute2, on Linux (<see cref="WhyUnavailable"/>; tests skip, saying so, with
/// <see cref="NetworkNamespaceFactAttribute"/>). The namespace and both ends of the pair are deleted on dispose, whatever
/// the test did; so is every link (<see cref="LinkTo"/>) and address (<see cref="AddAddress"/>) added inside it, with it.
/// </summary>
internal sealed partial class NetworkNamespace : IDisposable
{
    // Tests run in parallel, in this process and in others on the same machine: every name and subnet is drawn at random.
    private const int Attempts = 8;

    // setns(2): join a network namespace.
    private const int CloneNewNet = 0x40000000;

    private readonly string _hostInterface;
    private readonly string _inside;
    // The namespace's end of its link to another namespace, once there is one: where added addresses go.
    private string? _link;
    private int _disposed;

    private NetworkNamespace(string name, string hostInterface, string inside, IPAddress hostAddress, IPAddress address)
    {
        Name = name;
        _hostInterface = hostInterface;
        _inside = inside;
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
        var inside = "pg" + suffix + "n";
        var created = new NetworkNamespace("passage-" + suffix, "pg" + suffix + "h", inside, hostAddress, address);
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

    /// <summary>
    /// Joins this namespace to <paramref name="other"/> by a veth pair of their own, two hosts on one link that is not the
    /// test's: for each of <paramref name="networks"/> (IPv4), this end takes its first address (.1) and the other's end its
    /// second (.2). Both ends live inside the namespaces and go with either of them.
    /// </summary>
    public void LinkTo(NetworkNamespace other, params IPNetwork[] networks)
    {
        if (_link is not null || other._link is not null)
        {
            throw new InvalidOperationException("a namespace is linked to one other at most");
        }
        // The pair's names are this namespace's, with an l: unique as the namespace's own name is.
        var here = _inside[..^1] + "l";
        var there = _inside[..^1] + "m";
        Ip("link", "add", here, "netns", Name, "type", "veth", "peer", "name", there, "netns", other.Name);
        _link = here;
        other._link = there;
        foreach (var network in networks)
        {
            Ip("-n", Name, "address", "add", $"{Nth(network, 1)}/{network.PrefixLength}", "dev", here);
            Ip("-n", other.Name, "address", "add", $"{Nth(network, 2)}/{network.PrefixLength}", "dev", there);
        }
        Ip("-n", Name, "link", "set", here, "up");
        Ip("-n", other.Name, "link", "set", there, "up");
    }

    /// <summary>The <paramref name="n"/>th address of the IPv4 <paramref name="network"/>: what <see cref="LinkTo"/> gives each end.</summary>
    public static IPAddress Nth(IPNetwork network, int n)
    {
        var bytes = network.BaseAddress.GetAddressBytes();
        bytes[^1] += (byte)n;
        return new IPAddress(bytes);
    }

    /// <summary>
    /// Gives the namespace <paramref name="address"/> (a /32) on a real interface, not loopback: its end of the link
    /// (<see cref="LinkTo"/>) where it has one, where the other end reaches it, else its end of the pair with the test's namespace.
    /// </summary>
    public void AddAddress(IPAddress address) => Ip("-n", Name, "address", "add", $"{address}/32", "dev", _link ?? _inside);

    /// <summary>Takes away an address <see cref="AddAddress"/> gave.</summary>
    public void RemoveAddress(IPAddress address) => Ip("-n", Name, "address", "delete", $"{address}/32", "dev", _link ?? _inside);

    /// <summary>
    /// Runs <paramref name="make"/> on a thread of its own inside the namespace, and returns what it made: a socket made
    /// there stays the namespace's, wherever it is used after, and a process started there runs in it (as with
    /// <c>nsenter --net</c>), so a server or a <see cref="PassageProcess"/> started in it is a host of that namespace: its
    /// sockets and its view of the interfaces (netlink) are the namespace's, though /sys, unlike under
    /// <c>ip netns exec</c>, stays the test's. The thread ends with <paramref name="make"/>, so nothing else ever runs in
    /// the namespace by mistake.
    /// </summary>
    public T Run<T>(Func<T> make)
    {
        T made = default!;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle(Path.Combine("/var/run/netns", Name), FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
                if (SetNs(handle, CloneNewNet) != 0)
                {
                    throw new InvalidOperationException($"setns into {Name} failed: errno {Marshal.GetLastPInvokeError()}");
                }
                made = make();
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        });
        thread.Start();
        thread.Join();
        failure?.Throw();
        return made;
    }

    [LibraryImport("libc", EntryPoint = "setns", SetLastError = true)]
    private static partial int SetNs(Microsoft.Win32.SafeHandles.SafeFileHandle namespaceFile, int type);

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
