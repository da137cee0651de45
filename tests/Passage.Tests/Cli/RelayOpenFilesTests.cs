using System.Net.Sockets;
using System.Text.RegularExpressions;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Transport;

namespace Passage.Tests.Cli;

/// <summary>
/// The relay under the limits the kernel sets a process, as a real process: open files (started with <c>ulimit -n</c>),
/// and an unprivileged user's pipes (started as nobody).
/// </summary>
public sealed partial class RelayOpenFilesTests
{
    /// <summary>
    /// Under 1024 (soft and hard, a common default) one listener's caps are lowered to 352 connections and
    /// 352 tunnels. Without that, the relay took tunnels until the process ran out of descriptors (about 430)
    /// and aborted.
    /// </summary>
    [Fact]
    public async Task Under_a_low_limit_the_relay_lowers_its_caps_refuses_beyond_them_and_keeps_serving()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels-per-client", "4096"), openFiles: (1024, 1024));
        var port = await relay.WaitForListeningPortAsync();
        Assert.Contains("using relay.maxConnections 352 and relay.maxTunnels 352", relay.StandardError);

        var (open, refused) = await OpenTunnelsAsync(port, echo.Port, 420);
        try
        {
            Assert.Equal(352, open.Count);
            Assert.Equal(68, refused);
            Assert.False(relay.HasExited, relay.Output);
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }

        // Once they close, there is room again.
        await UntilATunnelOpensAsync(port, echo.Port);
    }

    /// <summary>
    /// The budget reads the soft limit; the runtime raises it to the hard one as the process starts, so the hard
    /// limit is what counts (LimitNOFILE= in a unit sets both).
    /// </summary>
    [Fact]
    public async Task The_relay_runs_with_its_soft_limit_raised_to_the_hard_one_and_sizes_its_caps_to_that()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path), openFiles: (1024, 3000));
        await relay.WaitForListeningPortAsync();
        // (3000 − 256 − 187) / 2
        Assert.Contains("using relay.maxConnections 1278 and relay.maxTunnels 1278", relay.StandardError);
        var limits = await File.ReadAllTextAsync($"/proc/{relay.Id}/limits");
        var match = OpenFilesLine().Match(limits);
        Assert.True(match.Success, limits);
        Assert.Equal("3000", match.Groups["soft"].Value);
        Assert.Equal("3000", match.Groups["hard"].Value);
    }

    /// <summary>
    /// Asks for <paramref name="count"/> tunnels to the echo server one after another: those opened (held, the caller's)
    /// and how many were refused (reset, or answered other than 200).
    /// </summary>
    private static async Task<(List<Socket> Open, int Refused)> OpenTunnelsAsync(int relayPort, int echoPort, int count)
    {
        var open = new List<Socket>();
        var refused = 0;
        for (var i = 0; i < count; i++)
        {
            var (socket, head) = await TryTunnelAsync(relayPort, echoPort);
            if (head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            {
                open.Add(socket!);
            }
            else
            {
                socket?.Dispose();
                refused++;
            }
        }
        return (open, refused);
    }

    /// <summary>Asks for a tunnel to the echo server every 50 ms until one opens (it is closed again).</summary>
    private static Task UntilATunnelOpensAsync(int relayPort, int echoPort) => UntilATunnelOpensAsync(relayPort, $"127.0.0.1:{echoPort}");

    /// <summary>Asks for a tunnel to <paramref name="target"/> every 50 ms until one opens (it is closed again).</summary>
    private static async Task UntilATunnelOpensAsync(int relayPort, string target)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            var (socket, head) = await TryTunnelAsync(relayPort, target);
            using (socket)
            {
                if (head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                {
                    return;
                }
            }
            await Task.Delay(50, cts.Token);
        }
    }

    /// <summary>A CONNECT to the echo server: the socket and the answer's head ("" when the relay refused the connection outright).</summary>
    private static Task<(Socket? Socket, string Head)> TryTunnelAsync(int relayPort, int echoPort) => TryTunnelAsync(relayPort, $"127.0.0.1:{echoPort}");

    /// <summary>A CONNECT to <paramref name="target"/>: the socket and the answer's head ("" when the relay refused the connection outright).</summary>
    private static async Task<(Socket? Socket, string Head)> TryTunnelAsync(int relayPort, string target)
    {
        try
        {
            return await ConnectHarness.RequestTunnelAsync(relayPort, target);
        }
        catch (SocketException)
        {
            // Refused at the connection limit: closed with a reset.
            return (null, "");
        }
    }

    [GeneratedRegex(@"Max open files\s+(?<soft>\d+)\s+(?<hard>\d+)")]
    private static partial Regex OpenFilesLine();

    /// <summary>
    /// Out of descriptors for real (here the limit is lowered under the running relay, past what its caps planned
    /// for). The runtime takes a pipe for a moment to start any thread; with no descriptor left, the thread pool adding
    /// a worker threw an OutOfMemoryException nothing catches, and the process printed "Out of memory." and aborted
    /// (seen once under the full suite's load). Now the relay keeps no connection, upstream or pipe on the last
    /// descriptors the limit allows (<see cref="OpenFileLimit.Headroom"/>): a client that gets one is reset, so its
    /// highest descriptor stays below them. It stays up, refuses what does not fit, and serves again once connections
    /// close. (Before, its tunnels took the very last descriptor, 319 of 320, every time.)
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_for_real_the_relay_refuses_instead_of_aborting_and_recovers()
    {
        const int Limit = 320;
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var (started, port) = await StartThenLowerLimitAsync(directory.Path, Limit);
        await using var relay = started;

        // About 190 descriptors are the runtime's: some 50 tunnels fit, the rest are refused.
        var (open, refused) = await OpenTunnelsAsync(port, echo.Port, 150);
        try
        {
            Assert.False(relay.HasExited, relay.Output);
            Assert.InRange(open.Count, 1, 149);
            Assert.Equal(150 - open.Count, refused);
            // Every tunnel it could hold is held: the headroom is still free. A thread starting as this is read may
            // hold a pipe in it for a moment, hence a few more.
            Assert.InRange(OpenDescriptors.Highest(relay.Id), 0, Limit - OpenFileLimit.Headroom + 4);
            // Bytes through a tunnel now: no splice pipe is kept in the headroom either (the copy path carries them).
            // A thread's start holds one there for a moment only.
            var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(4 << 20);
            var sending = Loopback.SendAllAsync(open[0], payload);
            Assert.Equal(payload, await Loopback.ReadToEndAsync(open[0], limit: payload.Length));
            await sending.WaitAsync(Timeouts.Default);
            await Timeouts.WaitUntilAsync(
                () => PipesFrom(relay.Id, Limit - OpenFileLimit.Headroom) == 0,
                () => $"{PipesFrom(relay.Id, Limit - OpenFileLimit.Headroom)} pipes in the headroom");
            await relay.WaitForLineAsync(l => l.Contains($"one of the last {OpenFileLimit.Headroom} descriptors the open-file limit ({Limit}) allows", StringComparison.Ordinal));
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }

        // Once they close, there is room again.
        await UntilATunnelOpensAsync(port, echo.Port);
        Assert.False(relay.HasExited, relay.Output);
    }

    /// <summary>
    /// The same edge met by a tunnel's upstream rather than its client: the relay does not keep it, and answers 503
    /// connection_limit_reached (the relay's limit, not the destination's fault). The kernel gives the lowest free
    /// descriptor, so with the relay full up to the headroom, one tunnel closed frees two below it; a connection that
    /// sends nothing takes one, the next tunnel's client the other, and its upstream would be the first of the headroom.
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_for_its_upstream_a_tunnel_is_answered_503_connection_limit_reached()
    {
        const int Limit = 320;
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var (started, port) = await StartThenLowerLimitAsync(directory.Path, Limit);
        await using var relay = started;
        using (await UpToTheHeadroomAsync(relay, port, echo.Port))
        {
            var (socket, head) = await TryTunnelAsync(port, echo.Port);
            socket?.Dispose();
            Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
            Assert.Contains("error=connection_limit_reached", head, StringComparison.Ordinal);
            Assert.False(relay.HasExited, relay.Output);
        }
    }

    /// <summary>
    /// The same edge met by the relay's own resolver: the socket it would ask through would be the first of the
    /// headroom, so it is closed unused, no question goes out, and the tunnel is answered 503 connection_limit_reached
    /// (the relay's limit, not the name's: not 502 dns_error, and the failure is not kept in the DNS cache). Before, the
    /// lookup took the runtime's descriptor and asked; only the dial after it was refused.
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_for_its_own_resolver_a_tunnel_to_a_name_is_answered_503_connection_limit_reached()
    {
        const int Limit = 320;
        await using var echo = new EchoServer();
        await using var dns = new TestDnsServer();
        dns.SetAddress("echo.test", 60, "127.0.0.1");
        using var directory = new TemporaryDirectory();
        var (started, port) = await StartThenLowerLimitAsync(directory.Path, Limit, extra: ["--dns-server", dns.EndPoint.ToString()]);
        await using var relay = started;
        using (var held = await UpToTheHeadroomAsync(relay, port, echo.Port))
        {
            var (socket, head) = await TryTunnelAsync(port, $"echo.test:{echo.Port}");
            socket?.Dispose();
            AssertNoDescriptorForTheLookup(head);
            Assert.Equal(0, dns.Count("echo.test"));
            Assert.False(relay.HasExited, relay.Output);

            // With room again, the name is looked up at once (the failure was not kept for the cache's 5 s) and the tunnel opens.
            var sockets = OpenDescriptors.Count(relay.Id, "socket:");
            held.Open[0].Dispose();
            // At least its two: the refused tunnel's client socket may close about now too.
            await Timeouts.WaitUntilAsync(() => OpenDescriptors.Count(relay.Id, "socket:") <= sockets - 2);
            var (opened, answer) = await TryTunnelAsync(port, $"echo.test:{echo.Port}");
            opened?.Dispose();
            Assert.StartsWith("HTTP/1.1 200", answer, StringComparison.Ordinal);
            Assert.True(dns.Count("echo.test") > 0);
        }
    }

    /// <summary>
    /// The system's resolver (getaddrinfo) opens sockets and files the relay cannot check: when the next descriptor
    /// would be the first of the headroom it is not called, and the tunnel is answered as with the relay's own resolver.
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_for_the_system_resolver_a_tunnel_to_a_name_is_answered_503_connection_limit_reached()
    {
        const int Limit = 320;
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var (started, port) = await StartThenLowerLimitAsync(
            directory.Path, Limit, new Dictionary<string, string?> { ["PASSAGE__RELAY__DNSRESOLVER"] = "system" });
        await using var relay = started;
        using (await UpToTheHeadroomAsync(relay, port, echo.Port))
        {
            var (socket, head) = await TryTunnelAsync(port, $"localhost:{echo.Port}");
            socket?.Dispose();
            AssertNoDescriptorForTheLookup(head);
            Assert.False(relay.HasExited, relay.Output);
        }
    }

    /// <summary>
    /// getaddrinfo holds a UDP socket for each server of resolv.conf until its lookup ends (three at most), and files
    /// before them: with the next descriptor below the headroom but not the next <see cref="LookupThreads.DescriptorsPerLookup"/>,
    /// its sockets could take the headroom. It is not called then (the test's server is not asked), and the tunnel is
    /// answered as above. (The relay has looked a name up before: loading the code that does so took descriptors of its
    /// own, once.)
    /// </summary>
    [MountNamespaceFact("port 53 and a resolv.conf of its own")]
    public async Task With_fewer_descriptors_free_than_getaddrinfo_holds_the_system_resolver_is_not_called()
    {
        await using var dns = SystemResolverDns();
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var (started, port) = await StartWithTheSystemResolverAsync(dns, directory.Path, echo.Port);
        await using var relay = started;
        using (await UpToTheHeadroomAsync(relay, port, echo.Port, free: LookupThreads.DescriptorsPerLookup - 1))
        {
            await AssertEchoTestIsNotLookedUpAsync(relay, port, echo.Port, dns);
        }
    }

    /// <summary>
    /// Up to 32 lookups run at once, each able to take its descriptors at any moment: one lookup is not admitted to the
    /// descriptors another still running may take. With one lookup held by a silent server, its socket taken, and room
    /// below the headroom for one more lookup but not for two, a second name is not looked up (before, each lookup
    /// checked for room for itself alone, and the 32 could together take 96 descriptors of the headroom).
    /// </summary>
    [MountNamespaceFact("port 53 and a resolv.conf of its own")]
    public async Task A_lookup_is_not_admitted_to_the_descriptors_another_lookup_running_may_take()
    {
        await using var dns = SystemResolverDns();
        dns.Silent["silent.test"] = true;
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        // The silent name's lookup holds its socket for as long as the test needs it.
        var (started, port) = await StartWithTheSystemResolverAsync(dns, directory.Path, echo.Port, "options timeout:30 attempts:1\n");
        await using var relay = started;
        // Left after the silent name's lookup takes its socket and the next tunnel's client takes one: room for one
        // lookup's descriptors, not for two.
        const int Free = 2 * LookupThreads.DescriptorsPerLookup;
        using (await UpToTheHeadroomAsync(relay, port, echo.Port, free: Free))
        {
            using var silent = new Socket(System.Net.Sockets.AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await silent.ConnectAsync(System.Net.IPAddress.Loopback, port);
            await silent.SendAsync(System.Text.Encoding.ASCII.GetBytes($"CONNECT silent.test:{echo.Port} HTTP/1.1\r\nHost: silent.test:{echo.Port}\r\n\r\n"));
            await Timeouts.WaitUntilAsync(() => dns.Count("silent.test") > 0);

            await AssertEchoTestIsNotLookedUpAsync(relay, port, echo.Port, dns);
        }
    }

    /// <summary>
    /// The relay's own resolver puts IPv6 first when this host has a route to it, which it learns by connecting a UDP
    /// socket; that socket is not kept in the headroom either: there it finds no route, and the answer comes IPv4 first.
    /// Seen through the DNS cache: a name of hosts(5) with both families, looked up with the next descriptor the first of
    /// the headroom (the tunnel refused 503 there, at its dial), is then dialled at 127.0.0.1, where ::1 came first
    /// when the probe took the headroom.
    /// </summary>
    [MountNamespaceFact("a hosts file of its own", Ipv6 = true)]
    public async Task Out_of_descriptors_for_its_route_probe_the_own_resolver_puts_ipv4_first()
    {
        const int Limit = 320;
        await using var echo = new EchoServer();
        var (v4, v6) = ListenersOnOnePort();
        using var _ = v4;
        using var __ = v6;
        var dualPort = ((System.Net.IPEndPoint)v4.LocalEndPoint!).Port;
        using var directory = new TemporaryDirectory();
        var hosts = Path.Combine(directory.Path, "hosts");
        await File.WriteAllTextAsync(hosts, "::1 dual.test\n127.0.0.1 dual.test\n");
        var (started, port) = await StartThenLowerLimitAsync(directory.Path, Limit, hostsFile: hosts);
        await using var relay = started;
        using (await UpToTheHeadroomAsync(relay, port, echo.Port))
        {
            var (socket, head) = await TryTunnelAsync(port, $"dual.test:{dualPort}");
            socket?.Dispose();
            Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
            Assert.False(v4.Poll(0, SelectMode.SelectRead) || v6.Poll(0, SelectMode.SelectRead));
        }

        await UntilATunnelOpensAsync(port, $"dual.test:{dualPort}");
        Assert.True(v4.Poll(0, SelectMode.SelectRead), "not dialled at 127.0.0.1");
        Assert.False(v6.Poll(0, SelectMode.SelectRead), "dialled at ::1 first");
    }

    /// <summary>Listeners on 127.0.0.1 and ::1, on one port.</summary>
    private static (Socket V4, Socket V6) ListenersOnOnePort()
    {
        for (var attempt = 0; ; attempt++)
        {
            var v4 = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var v6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                v4.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
                v4.Listen();
                v6.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.IPv6Loopback, ((System.Net.IPEndPoint)v4.LocalEndPoint!).Port));
                v6.Listen();
                return (v4, v6);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && attempt < 20)
            {
                // Its port taken on ::1: another.
                v4.Dispose();
                v6.Dispose();
            }
        }
    }

    /// <summary>
    /// Kestrel's own accept loop, when accept fails, tries again at once: out of descriptors, with a client waiting, the
    /// admin listener spun at about half a core, and the spare descriptors stayed held. Its accepts pause as the front
    /// doors' do, and it says so. (Here the limit is lowered under an idle relay to its lowest free descriptor: none is
    /// left at all, and the spares, above the limit, are no help. So left, the runtime aborts the process before long,
    /// with a client or without, the first time it starts a thread: not asserted on.)
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_the_admin_listener_pauses_its_accepts_and_says_so()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--admin", "127.0.0.1:0"));
        await relay.WaitForListeningPortAsync();
        var adminPort = await relay.WaitForAdminPortAsync();
        var used = Directory.GetFiles($"/proc/{relay.Id}/fd")
            .Select(fd => int.Parse(Path.GetFileName(fd), System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        var lowestFree = Enumerable.Range(0, int.MaxValue).First(fd => !used.Contains(fd));
        Assert.True(SetLimit(relay.Id, RLIMIT_NOFILE, new RLimit((ulong)lowestFree, (ulong)lowestFree), 0) == 0,
            $"prlimit failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");

        // The kernel completes the handshake; the relay's accept fails.
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, adminPort));
        await relay.WaitForLineAsync(l => l.Contains("admin: accept failed (TooManyOpenSockets", StringComparison.Ordinal));
    }

    /// <summary>The answer to a tunnel whose name lookup found no descriptor to take: the relay's limit (503), saying where.</summary>
    /// <summary>A DNS server on port 53 of a loopback address of its own (so it can be resolv.conf's), knowing warm.test and echo.test.</summary>
    private static TestDnsServer SystemResolverDns()
    {
        var address = new System.Net.IPAddress([127, 0, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(2, 255)]);
        var dns = new TestDnsServer(new System.Net.IPEndPoint(address, 53));
        dns.SetAddress("warm.test", 60, "127.0.0.1");
        dns.SetAddress("echo.test", 60, "127.0.0.1");
        return dns;
    }

    /// <summary>
    /// A relay with the system's resolver, whose resolv.conf names <paramref name="dns"/> alone (then
    /// <paramref name="resolvOptions"/>), its open-file limit lowered; it has looked a name up once (loading the code
    /// that does so takes descriptors of its own, once).
    /// </summary>
    private static async Task<(PassageProcess Relay, int Port)> StartWithTheSystemResolverAsync(TestDnsServer dns, string directory, int echoPort, string resolvOptions = "")
    {
        const int Limit = 320;
        var resolvConf = Path.Combine(directory, "resolv.conf");
        await File.WriteAllTextAsync(resolvConf, $"nameserver {dns.EndPoint.Address}\n{resolvOptions}");
        var (relay, port) = await StartThenLowerLimitAsync(
            directory, Limit, new Dictionary<string, string?> { ["PASSAGE__RELAY__DNSRESOLVER"] = "system" }, resolvConf: resolvConf);
        try
        {
            await UntilATunnelOpensAsync(port, $"warm.test:{echoPort}");
            return (relay, port);
        }
        catch
        {
            await relay.DisposeAsync();
            throw;
        }
    }

    /// <summary>A tunnel to echo.test is answered 503 for want of a descriptor for its lookup, and <paramref name="dns"/> is not asked.</summary>
    private static async Task AssertEchoTestIsNotLookedUpAsync(PassageProcess relay, int port, int echoPort, TestDnsServer dns)
    {
        var (socket, head) = await TryTunnelAsync(port, $"echo.test:{echoPort}");
        socket?.Dispose();
        AssertNoDescriptorForTheLookup(head);
        Assert.Equal(0, dns.Count("echo.test"));
        Assert.False(relay.HasExited, relay.Output);
    }

    private static void AssertNoDescriptorForTheLookup(string head)
    {
        Assert.StartsWith("HTTP/1.1 503", head, StringComparison.Ordinal);
        Assert.Contains("error=connection_limit_reached", head, StringComparison.Ordinal);
        Assert.Contains("no descriptor for the name lookup", head, StringComparison.Ordinal);
    }

    /// <summary>
    /// Fills the relay with tunnels up to the headroom, then closes a few (two descriptors below it free each: the kernel
    /// gives the lowest) and takes some back with connections that send nothing (returned, the caller's): the next
    /// tunnel's client takes one more, and <paramref name="free"/> are left below the headroom for what the relay opens
    /// for it next.
    /// </summary>
    private static async Task<Held> UpToTheHeadroomAsync(PassageProcess relay, int port, int echoPort, int free = 0)
    {
        var (open, _) = await OpenTunnelsAsync(port, echoPort, 150);
        var idle = new List<Socket>();
        try
        {
            var full = OpenDescriptors.Count(relay.Id, "socket:");
            var closed = (free + 2) / 2;
            open.Take(closed).ToList().ForEach(s => s.Dispose());
            open.RemoveRange(0, closed);
            await Timeouts.WaitUntilAsync(() => OpenDescriptors.Count(relay.Id, "socket:") == full - 2 * closed);
            while (idle.Count < 2 * closed - 1 - free)
            {
                idle.Add(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                await idle[^1].ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
                await Timeouts.WaitUntilAsync(() => OpenDescriptors.Count(relay.Id, "socket:") == full - 2 * closed + idle.Count);
            }
            return new Held(open, idle);
        }
        catch
        {
            open.ForEach(s => s.Dispose());
            idle.ForEach(s => s.Dispose());
            throw;
        }
    }

    /// <summary>The connections that hold a relay up to its headroom (<see cref="UpToTheHeadroomAsync"/>), closed together.</summary>
    private sealed class Held(List<Socket> open, List<Socket> idle) : IDisposable
    {
        /// <summary>Its tunnels.</summary>
        public List<Socket> Open { get; } = open;

        public void Dispose()
        {
            Open.ForEach(s => s.Dispose());
            idle.ForEach(s => s.Dispose());
        }
    }


    /// <summary>
    /// A relay for CONNECT whose open-file limit is lowered to <paramref name="limit"/> once it listens, past what its
    /// caps planned for: the relay and its port.
    /// </summary>
    private static async Task<(PassageProcess Relay, int Port)> StartThenLowerLimitAsync(
        string keyDirectory, int limit, IDictionary<string, string?>? environment = null, string[]? extra = null,
        string? resolvConf = null, string? hostsFile = null)
    {
        var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(keyDirectory, ["--max-tunnels-per-client", "4096", .. extra ?? []]), environment,
            resolvConf: resolvConf, hostsFile: hostsFile);
        try
        {
            var port = await relay.WaitForListeningPortAsync();
            Assert.True(SetLimit(relay.Id, RLIMIT_NOFILE, new RLimit((ulong)limit, (ulong)limit), 0) == 0,
                $"prlimit failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");
            return (relay, port);
        }
        catch
        {
            await relay.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// /metrics carries the process figures every Prometheus exporter shows (process_open_fds against process_max_fds,
    /// memory, CPU, start time), so an operator can alert on descriptors before the caps bite: 60 open tunnels show as
    /// 120 descriptors more, and each figure is the process's own, as /proc says.
    /// </summary>
    [Fact]
    public async Task Metrics_show_the_process_figures_and_its_descriptors_follow_the_open_tunnels()
    {
        const int Tunnels = 60;
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var started = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels-per-client", "4096", "--admin", "127.0.0.1:0"), openFiles: (1024, 3000));
        var port = await relay.WaitForListeningPortAsync();
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await relay.WaitForAdminPortAsync()}"), Timeout = Timeouts.Default };

        var before = await admin.GetStringAsync("/metrics");
        Assert.Contains("# TYPE process_open_fds gauge", before);
        Assert.Contains("# TYPE process_cpu_seconds_total counter", before);
        Assert.Equal(3000, MetricValue(before, "process_max_fds"));
        var rss = long.Parse(Regex.Match(await File.ReadAllTextAsync($"/proc/{relay.Id}/status"), @"VmRSS:\s+(\d+) kB").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) * 1024;
        var shown = MetricValue(before, "process_resident_memory_bytes");
        Assert.InRange(shown, rss / 2, rss * 2);
        Assert.InRange(Number(before, "process_start_time_seconds"), started - 1, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 1);
        Assert.True(Number(before, "process_cpu_seconds_total") > 0, before);

        var (open, refused) = await OpenTunnelsAsync(port, echo.Port, Tunnels);
        try
        {
            Assert.Equal(0, refused);
            var during = await admin.GetStringAsync("/metrics");
            var real = Directory.GetFiles($"/proc/{relay.Id}/fd").Length;
            // Each tunnel holds its client's socket and its upstream's; the scrape's own connection and the pool's spare
            // descriptors may differ by a few between the two readings.
            Assert.InRange(MetricValue(during, "process_open_fds") - MetricValue(before, "process_open_fds"), 2 * Tunnels, 2 * Tunnels + 8);
            Assert.InRange(MetricValue(during, "process_open_fds"), real - 8, real + 8);
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }
    }

    private static double Number(string exposition, string series)
    {
        var line = exposition.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {series} in:\n{exposition}");
        return double.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Splice pipes take descriptors too: a relay keeps them within a sixteenth of its limit on open files (under
    /// 1024, 32 pipes). Tunnels whose upstream stops reading stall with bytes in flight, each holding a pipe, until
    /// the share is used up; tunnels opened then find none and copy through user space instead. The relay never
    /// holds more pipes than its share, says so on /metrics while it happens, and every byte of every tunnel
    /// arrives, in order: the copying ones' at once, the stalled ones' once their upstream reads.
    /// </summary>
    [Fact]
    public async Task Past_its_share_of_pipes_a_stalled_direction_copies_instead_and_every_byte_arrives()
    {
        // More per tunnel than the relay can hold towards a sink that does not read (a send buffer of at most
        // net.ipv4.tcp_wmem's 4 MiB, and a 1 MiB pipe or a 64 KiB buffer): with 4 MiB, a direction under a busy suite
        // sometimes got all of it into its send buffer, half-closed (FIN_WAIT1), and was not counted as stalled.
        // A stalled direction holds a pipe unless it stalled sending its first, copied read (which takes none: under
        // a busy suite the sender's first segments can be short, and the sink's window small), so tunnels are
        // opened until the share is held rather than a fixed number.
        const int PipeShare = 32, MostStalled = 2 * PipeShare, Copying = 4, PerTunnel = 8 << 20;
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels-per-client", "4096", "--admin", "127.0.0.1:0"), openFiles: (1024, 1024));
        var port = await relay.WaitForListeningPortAsync();
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await relay.WaitForAdminPortAsync()}"), Timeout = Timeouts.Default };
        // Said at start, for the operator: (1024 / 16) / 2.
        Assert.Contains("at most 32 open (a sixteenth of the open-file limit", relay.StandardError);

        // An upstream that accepts and does not read until told. Its small receive buffer (inherited by the accepted
        // sockets) fills early; it still takes a direction's first 32 KiB read, so a direction goes on to ask for a pipe.
        using var sink = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        sink.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        sink.Listen(MostStalled);
        var sinkPort = ((System.Net.IPEndPoint)sink.LocalEndPoint!).Port;
        // And one that reads everything at once.
        using var reader = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        reader.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        reader.Listen(Copying);
        var readerPort = ((System.Net.IPEndPoint)reader.LocalEndPoint!).Port;
        var before = PipeDescriptors(relay.Id);

        var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(PerTunnel);
        var expected = System.Security.Cryptography.SHA256.HashData(payload);
        var clients = new List<Socket>();
        var upstreams = new List<Socket>();
        var most = 0;
        int HeldPipes()
        {
            var held = (PipeDescriptors(relay.Id) - before) / 2;
            most = Math.Max(most, held);
            return held;
        }
        try
        {
            // The stalled senders wait for the whole test; a slow machine gets more than the usual timeout.
            var stalledSends = new List<Task>();
            while (HeldPipes() < PipeShare)
            {
                Assert.True(clients.Count < MostStalled, $"{clients.Count} tunnels stalled and {HeldPipes()} pipes held\n{relay.Output}");
                var (client, head) = await ConnectHarness.RequestTunnelAsync(port, $"127.0.0.1:{sinkPort}");
                clients.Add(client);
                Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
                upstreams.Add(await sink.AcceptAsync().WaitAsync(Timeouts.Default));
                stalledSends.Add(SendThenEndAsync(client, payload, 4 * Timeouts.Default));
                // Stalled: the relay's send queue towards the sink is not empty.
                await Timeouts.WaitUntilAsync(
                    () => StalledTowards(sinkPort) == clients.Count,
                    () => $"{StalledTowards(sinkPort)} of {clients.Count} stalled; {HeldPipes()} pipes held\n"
                        + string.Join('\n', File.ReadLines("/proc/net/tcp").Where(line => line.Contains($":{sinkPort:X4} ", StringComparison.Ordinal)))
                        + $"\n{relay.Output}");
            }
            var metrics = await admin.GetStringAsync("/metrics");
            Assert.Equal(PipeShare, MetricValue(metrics, "passage_relay_splice_pipes"));
            Assert.True(MetricValue(metrics, "passage_relay_splice_pipe_capacity_bytes") >= PipeShare * 4096, metrics);

            // Every pipe is held: new tunnels to a reading upstream copy, and their bytes arrive while the others wait.
            using var sampling = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!sampling.IsCancellationRequested)
                {
                    HeldPipes();
                    await Task.Delay(5);
                }
            });
            var copying = new List<Task>();
            var copied = new List<Task<(long Length, byte[] Hash)>>();
            for (var i = 0; i < Copying; i++)
            {
                var (client, head) = await ConnectHarness.RequestTunnelAsync(port, $"127.0.0.1:{readerPort}");
                clients.Add(client);
                Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
                var upstream = await reader.AcceptAsync().WaitAsync(Timeouts.Default);
                upstreams.Add(upstream);
                copied.Add(ReadAndHashAsync(upstream));
                copying.Add(SendThenEndAsync(client, payload, Timeouts.Default));
            }
            await Task.WhenAll(copying).WaitAsync(Timeouts.Default);
            foreach (var (length, hash) in await Task.WhenAll(copied).WaitAsync(Timeouts.Default))
            {
                Assert.Equal(PerTunnel, length);
                Assert.Equal(expected, hash);
            }
            await sampling.CancelAsync();
            await sampler;
            // Not one pipe beyond the share.
            Assert.Equal(PipeShare, most);
            // The operator sees it as it happens, not when the tunnels end: every pipe in use, and fallbacks
            // (counted per burst copied, so at least one).
            metrics = await admin.GetStringAsync("/metrics");
            Assert.Equal(PipeShare, MetricValue(metrics, "passage_relay_splice_pipes"));
            Assert.True(MetricValue(metrics, "passage_relay_splice_fallbacks_total{reason=\"no_pipe\"}") >= 1, metrics);
            Assert.Equal(0, MetricValue(metrics, "passage_relay_splice_fallbacks_total{reason=\"refused\"}"));
            // And the log says so, at the default level, once however many bursts are copied.
            await Timeouts.WaitUntilAsync(() => relay.StandardError.Contains("No splice pipe to be had (EMFILE, ", StringComparison.Ordinal));
            Assert.Contains("at most 32 pipes", relay.StandardError);
            Assert.Single(System.Text.RegularExpressions.Regex.Matches(relay.StandardError, @"No splice pipe to be had \(EMFILE"));

            var reads = upstreams.Take(stalledSends.Count).Select(ReadAndHashAsync).ToList();
            await Task.WhenAll(stalledSends).WaitAsync(Timeouts.Default);
            foreach (var (length, hash) in await Task.WhenAll(reads).WaitAsync(Timeouts.Default))
            {
                Assert.Equal(PerTunnel, length);
                Assert.Equal(expected, hash);
            }
            Assert.False(relay.HasExited, relay.Output);
        }
        finally
        {
            clients.ForEach(s => s.Dispose());
            upstreams.ForEach(s => s.Dispose());
        }
    }

    /// <summary>
    /// The systemd unit runs the relay as a user of its own, without capabilities: the kernel then counts its pipes
    /// against fs.pipe-user-pages-soft and caps their size at fs.pipe-max-size. Such a relay still splices, through
    /// pipes larger than the kernel's default.
    /// </summary>
    [UnprivilegedFact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // Skipped elsewhere (UnprivilegedFact).
    public async Task Run_as_an_unprivileged_user_the_relay_splices_through_pipes_larger_than_the_default()
    {
        if (long.Parse(File.ReadAllText("/proc/sys/fs/pipe-max-size").Trim(), System.Globalization.CultureInfo.InvariantCulture) is var maxSize && maxSize <= 64 * 1024)
        {
            // No pipe larger than the default allowed: nothing to splice through.
            return;
        }
        await using var echo = new EchoServer();
        // Its key and data go in a folder the user nobody may write to.
        using var directory = new TemporaryDirectory();
        File.SetUnixFileMode(directory.Path, (UnixFileMode)Convert.ToInt32("777", 8));
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--admin", "127.0.0.1:0"), workingDirectory: directory.Path, unprivileged: true);
        var port = await relay.WaitForListeningPortAsync();
        using var admin = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{await relay.WaitForAdminPortAsync()}"), Timeout = Timeouts.Default };
        // The budget for large pipes is a quarter of this user's pipe quota, and the relay says so at start.
        var budget = SplicePipe.LargePipeBudget(
            privileged: false, File.ReadAllText("/proc/sys/fs/pipe-user-pages-soft").Trim(), Environment.SystemPageSize);
        Assert.True(budget > 0);
        var budgetMiB = (budget / (1024.0 * 1024)).ToString("0.#", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Contains($"pipes of up to 1024 KiB while those larger than 64 KiB take under {budgetMiB} MiB", relay.StandardError);
        var status = await File.ReadAllTextAsync($"/proc/{relay.Id}/status");
        Assert.Matches(@"\nUid:\s+65534\s", status);
        Assert.Matches(@"\nCapEff:\s+0+\n", status);

        var (client, head) = await ConnectHarness.RequestTunnelAsync(port, $"127.0.0.1:{echo.Port}");
        using var _ = client;
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var payload = System.Security.Cryptography.RandomNumberGenerator.GetBytes(8 << 20);
        var sending = Loopback.SendAllAsync(client, payload);
        Assert.Equal(payload, await Loopback.ReadToEndAsync(client, limit: payload.Length));
        await sending.WaitAsync(Timeouts.Default);

        // A direction gives its pipe back when it parks, and the process keeps a few empty ones for the next burst.
        var metrics = await admin.GetStringAsync("/metrics");
        Assert.True(MetricValue(metrics, "passage_relay_splice_pipe_capacity_bytes") >= Math.Min(maxSize, PumpOptions.DefaultPipeSize), metrics);
        Assert.Equal(0, MetricValue(metrics, "passage_relay_splice_fallbacks_total{reason=\"no_pipe\"}"));
        Assert.Equal(0, MetricValue(metrics, "passage_relay_splice_fallbacks_total{reason=\"refused\"}"));
        Assert.False(relay.HasExited, relay.Output);
    }

    private static async Task SendThenEndAsync(Socket socket, byte[] data, TimeSpan? timeout = null)
    {
        await Loopback.SendAllAsync(socket, data, timeout);
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Reads <paramref name="socket"/> to its end: how many bytes, and their SHA-256.</summary>
    private static async Task<(long Length, byte[] Hash)> ReadAndHashAsync(Socket socket)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[64 * 1024];
        long length = 0;
        int read;
        while ((read = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0)
        {
            hash.AppendData(buffer, 0, read);
            length += read;
        }
        return (length, hash.GetHashAndReset());
    }

    /// <summary>The value of the series <paramref name="series"/> (name and labels, as written) in a Prometheus exposition.</summary>
    private static long MetricValue(string exposition, string series)
    {
        var line = exposition.Split('\n').SingleOrDefault(l => l.StartsWith(series + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"no {series} in:\n{exposition}");
        return long.Parse(line[(series.Length + 1)..], System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>How many descriptors numbered <paramref name="lowest"/> or more process <paramref name="pid"/> has open on pipes.</summary>
    private static int PipesFrom(int pid, int lowest) =>
        Directory.GetFiles($"/proc/{pid}/fd")
            .Count(fd => int.Parse(Path.GetFileName(fd), System.Globalization.CultureInfo.InvariantCulture) >= lowest
                && (new FileInfo(fd).LinkTarget ?? "").StartsWith("pipe:", StringComparison.Ordinal));

    /// <summary>How many descriptors process <paramref name="pid"/> has open on pipes.</summary>
    private static int PipeDescriptors(int pid) =>
        OpenDescriptors.Count(pid, "pipe:");

    /// <summary>Established IPv4 connections to 127.0.0.1:<paramref name="port"/> with bytes waiting in their send queue.</summary>
    private static int StalledTowards(int port)
    {
        var remote = $"0100007F:{port:X4}";
        return File.ReadLines("/proc/net/tcp").Skip(1)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Count(f => f[2] == remote && f[3] == "01" && f[4].Split(':')[0] != "00000000");
    }

    private const int RLIMIT_NOFILE = 7;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private readonly record struct RLimit(ulong Current, ulong Maximum);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static partial int SetLimit(int pid, int resource, in RLimit newLimit, nint oldLimit);
}
