using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>The relay's notifications to a service manager (NOTIFY_SOCKET), read from a Unix datagram socket as systemd would.</summary>
public sealed class RelayNotifyTests
{
    /// <summary>
    /// deploy/passage-relay.service is Type=notify: systemd holds `systemctl start` until READY=1, and a relay that cannot
    /// listen fails the start instead of being reported active. The relay sent nothing, so such a unit would have timed out.
    /// </summary>
    [Fact]
    public async Task The_relay_sends_READY_once_listening_and_STOPPING_on_SIGTERM()
    {
        using var directory = new TemporaryDirectory();
        using var listener = Listen(directory, out var path);
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "127.0.0.1:0", "--key", directory.File("relay.pem")],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path });

        Assert.Equal("READY=1", await NextAsync(listener));
        // READY comes after the listener is bound: the port it logs is there already.
        var port = await relay.WaitForListeningPortAsync();
        using (var client = new TcpClient())
        {
            await client.ConnectAsync("127.0.0.1", port);
        }

        relay.Signal();
        Assert.Equal("STOPPING=1", await NextAsync(listener));
        await relay.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, relay.ExitCode);
    }

    /// <summary>deploy/passage-client.service is Type=notify too: the client sends READY once its proxies listen.</summary>
    [Fact]
    public async Task The_client_sends_READY_once_its_proxies_listen_and_STOPPING_on_SIGTERM()
    {
        using var directory = new TemporaryDirectory();
        using var listener = Listen(directory, out var path);
        using var identity = Passage.Identity.NodeIdentity.Create();
        // A relay that is down: the client starts all the same, and says so.
        await using var client = PassageProcess.Start(
            ["client", "--relay", $"{identity.NodeId}@127.0.0.1:1", "--socks", "127.0.0.1:0", "--http", "off"],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path });

        Assert.Equal("READY=1", await NextAsync(listener));
        client.Signal();
        Assert.Equal("STOPPING=1", await NextAsync(listener));
        await client.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, client.ExitCode);
    }

    /// <summary>A Unix datagram socket in <paramref name="directory"/> for NOTIFY_SOCKET, as systemd's.</summary>
    private static Socket Listen(TemporaryDirectory directory, out string path)
    {
        path = directory.File("notify.sock");
        var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        return listener;
    }

    private static async Task<string> NextAsync(Socket listener)
    {
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var n = await listener.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    /// <summary>A relay that cannot start exits without READY (systemd then fails the start).</summary>
    [Fact]
    public async Task A_relay_that_cannot_listen_sends_no_READY()
    {
        using var directory = new TemporaryDirectory();
        using var listener = Listen(directory, out var path);
        using var taken = new TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["relay", "--connect", $"127.0.0.1:{port}", "--key", directory.File("relay.pem")],
            environment: new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path });

        Assert.Equal(1, exit);
        Assert.Contains("Cannot start", stderr);
        Assert.Equal(0, listener.Available);
    }
}
