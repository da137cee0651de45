using System.Net;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>The pass-through relay as a real <c>passage</c> process, with curl as the client.</summary>
public sealed class PassthroughRelayProcessTests
{
    [Fact]
    public async Task Curl_reaches_the_origin_through_the_relay_and_the_origin_sees_the_relay_not_the_client()
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0",
            "--route", $"origin.test=:{origin.Port}", "--map", "origin.test=127.0.0.1", "--allow-private",
        ]);
        var port = await relay.WaitForListeningPortAsync();

        var (exit, body, error) = await Curl.RunAsync(
            "--interface", "127.0.0.2",
            "--connect-to", $"origin.test:443:127.0.0.1:{port}",
            "--cacert", origin.CertificatePath,
            "https://origin.test/");

        Assert.True(exit == 0, $"curl failed ({exit}): {error}\n{relay.Output}");
        Assert.StartsWith("origin origin.test saw remote=", body);
        // The client spoke from 127.0.0.2; the origin was reached from the relay's own address.
        var seen = IPAddress.Parse(body.Trim().Split("remote=")[1]);
        Assert.NotEqual(IPAddress.Parse("127.0.0.2"), seen.IsIPv4MappedToIPv6 ? seen.MapToIPv4() : seen);
    }

    [Fact]
    public async Task Without_a_route_curl_gets_a_tls_alert_and_nothing_is_dialed()
    {
        using var tap = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        tap.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        tap.Listen(8);
        var tapPort = ((IPEndPoint)tap.LocalEndPoint!).Port;
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0",
            "--route", $"origin.test=127.0.0.1:{tapPort}", "--allow-private",
        ]);
        var port = await relay.WaitForListeningPortAsync();

        var (exit, _, error) = await Curl.RunAsync("-k", "--connect-to", $"other.test:443:127.0.0.1:{port}", "https://other.test/");

        Assert.NotEqual(0, exit);
        Assert.Contains("unrecognized name", error, StringComparison.OrdinalIgnoreCase);
        // Nothing ever connected to the (would-be) upstream.
        tap.Blocking = false;
        Assert.Throws<SocketException>(() => tap.Accept());
    }

    /// <summary>
    /// SIGHUP (the terminal closed) is a graceful stop as SIGTERM is: it used to kill the process at once, open
    /// connections cut and no drain.
    /// </summary>
    [Theory]
    [InlineData(PassageProcess.SigTerm)]
    [InlineData(PassageProcess.SigHup)]
    public async Task Sigterm_stops_accepting_lets_open_connections_finish_and_exits_cleanly(int signal)
    {
        var (echoTask, echoPort, echoListener) = StartEcho();
        using var _ = echoListener;
        var (relay, client, port) = await DrainingWithOneConnectionAsync(echoPort, "20s", signal);
        await using var __ = relay;
        using var ___ = client;

        // New connections are refused...
        using var late = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await Assert.ThrowsAsync<SocketException>(async () => await late.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)));
        // ...while the open one still works, and its end lets the relay exit.
        await Loopback.SendAllAsync(client, "still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), await Loopback.ReadToEndAsync(client, limit: 10));
        client.Shutdown(SocketShutdown.Send);
        Assert.True(await Loopback.IsClosedByPeerAsync(client));

        await relay.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, relay.ExitCode);
        Assert.Contains("connections closed at the drain deadline: 0", relay.Output);
        await echoTask.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A second SIGTERM during a long drain closes the open connections at once, and the log says so: closed at the
    /// second signal, not at a drain deadline that was never reached.
    /// </summary>
    [Theory]
    [InlineData(PassageProcess.SigTerm)]
    [InlineData(PassageProcess.SigHup)]
    public async Task A_second_sigterm_closes_open_connections_at_once_and_the_log_says_so(int signal)
    {
        var (echoTask, echoPort, echoListener) = StartEcho();
        using var _ = echoListener;
        var (relay, client, _) = await DrainingWithOneConnectionAsync(echoPort, "10m", signal);
        await using var __ = relay;
        using var ___ = client;

        relay.Signal(signal);

        await relay.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, relay.ExitCode);
        Assert.True(await Loopback.IsClosedByPeerAsync(client));
        Assert.Contains("told not to wait for the drain deadline; connections closed at once: 1", relay.Output);
        Assert.DoesNotContain("closed at the drain deadline", relay.Output);
        // The upstream side is cut as well (reset, or closed): the echo ends either way.
        await Task.WhenAny(echoTask).WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A pass-through relay to the echo at <paramref name="echoPort"/> with one open relayed connection (a
    /// ClientHello-shaped first record gets it past the reader), after <paramref name="signal"/>: draining, for up to <paramref name="drainTimeout"/>.
    /// </summary>
    private static async Task<(PassageProcess Relay, Socket Client, int Port)> DrainingWithOneConnectionAsync(int echoPort, string drainTimeout, int signal)
    {
        var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0", "--upstream", $"127.0.0.1:{echoPort}", "--allow-private", "--drain-timeout", drainTimeout,
        ]);
        var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            var port = await relay.WaitForListeningPortAsync();
            await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
            var hello = SyntheticHello.WithServerName("origin.test");
            await Loopback.SendAllAsync(client, hello);
            Assert.Equal(hello, await Loopback.ReadToEndAsync(client, limit: hello.Length));

            relay.Signal(signal);
            await relay.WaitForLineAsync(l => l.Contains("passthrough stopping: accepting no new connections", StringComparison.Ordinal));
            return (relay, client, port);
        }
        catch
        {
            client.Dispose();
            await relay.DisposeAsync();
            throw;
        }
    }

    /// <summary>A one-connection echo server: sends back whatever it receives, half-closes at end of stream.</summary>
    [Fact]
    public async Task Both_sockets_of_a_relayed_connection_wait_on_the_same_readiness_thread()
    {
        // One epoll set per core, each with its own thread. A relayed connection's client socket and the
        // upstream it dialed belong together: then its wake-ups do not hop between threads. The dial
        // completes on the accepting thread (a loopback connect finishes inside connect(2)), so this
        // holds only because the pump keeps the two together. Seen from outside, in /proc.
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        await using var echo = new EchoServer();
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0", "--upstream", $"127.0.0.1:{echo.Port}", "--allow-private",
        ]);
        var port = await relay.WaitForListeningPortAsync();

        var clients = new List<Socket>();
        var upstreamsSeen = new HashSet<long>();
        try
        {
            var hello = SyntheticHello.WithServerName("origin.test");
            // One at a time, so that the upstream socket that is new is this connection's.
            for (var i = 0; i < 6; i++)
            {
                var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                clients.Add(client);
                await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
                await Loopback.SendAllAsync(client, hello);
                Assert.Equal(hello, await Loopback.ReadToEndAsync(client, limit: hello.Length));
                var clientPort = ((IPEndPoint)client.LocalEndPoint!).Port;

                // Each socket joins its epoll set at its first wait, which may come just after the echo.
                RelaySockets? found = null;
                var deadline = DateTime.UtcNow + Timeouts.Default;
                while (DateTime.UtcNow < deadline)
                {
                    found = RelaySockets.Read(relay.Id, port, clientPort, echo.Port, upstreamsSeen);
                    if (found is { FrontSet: not null, BackSet: not null })
                    {
                        break;
                    }
                    await Task.Delay(20);
                }
                Assert.True(found is { FrontSet: not null, BackSet: not null }, $"connection {i}: {found}");
                Assert.Equal(found!.FrontSet, found.BackSet);
                upstreamsSeen.Add(found.BackInode);
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>
    /// A relayed connection as the relay process holds it, read from /proc: its socket from the client
    /// (local port <c>port</c>, remote <c>clientPort</c>) and the one upstream socket to <c>upstreamPort</c>
    /// not in <c>seen</c>, each with the epoll descriptor that watches it (null: none yet).
    /// </summary>
    private sealed record RelaySockets(long FrontInode, string? FrontSet, long BackInode, string? BackSet)
    {
        public static RelaySockets? Read(int pid, int port, int clientPort, int upstreamPort, HashSet<long> seen)
        {
            long front = -1, back = -1;
            foreach (var line in File.ReadLines($"/proc/{pid}/net/tcp").Skip(1))
            {
                // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
                var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var local = PortOf(fields[1]);
                var remote = PortOf(fields[2]);
                var inode = long.Parse(fields[9], System.Globalization.CultureInfo.InvariantCulture);
                if (fields[3] != "01" || inode == 0)
                {
                    continue; // not established
                }
                if (local == port && remote == clientPort)
                {
                    front = inode;
                }
                else if (remote == upstreamPort && !seen.Contains(inode))
                {
                    back = back == -1 ? inode : throw new InvalidOperationException("two new upstream sockets");
                }
            }
            if (front == -1 || back == -1)
            {
                return null;
            }
            // Descriptor number of each socket inode, and which epoll descriptor watches each descriptor.
            var fdOf = new Dictionary<long, string>();
            var watchedBy = new Dictionary<string, string>();
            foreach (var fd in Directory.GetFiles($"/proc/{pid}/fd"))
            {
                var target = new FileInfo(fd).LinkTarget ?? "";
                var name = Path.GetFileName(fd);
                if (target.StartsWith("socket:[", StringComparison.Ordinal))
                {
                    fdOf[long.Parse(target[8..^1], System.Globalization.CultureInfo.InvariantCulture)] = name;
                }
                else if (target == "anon_inode:[eventpoll]")
                {
                    foreach (var info in File.ReadLines($"/proc/{pid}/fdinfo/{name}"))
                    {
                        // tfd:       42 events:       19 data: ...
                        if (info.StartsWith("tfd:", StringComparison.Ordinal))
                        {
                            watchedBy[info.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]] = name;
                        }
                    }
                }
            }
            string? SetOf(long inode) => fdOf.TryGetValue(inode, out var fd) && watchedBy.TryGetValue(fd, out var set) ? set : null;
            return new RelaySockets(front, SetOf(front), back, SetOf(back));
        }

        private static int PortOf(string address) => int.Parse(address[(address.IndexOf(':', StringComparison.Ordinal) + 1)..], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
    }

    internal static (Task Task, int Port, Socket Listener) StartEcho()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(8);
        var task = Task.Run(async () =>
        {
            using var peer = await listener.AcceptAsync();
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await peer.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                await Loopback.SendAllAsync(peer, buffer.AsMemory(0, n));
            }
            peer.Shutdown(SocketShutdown.Send);
        });
        return (task, ((IPEndPoint)listener.LocalEndPoint!).Port, listener);
    }
}
