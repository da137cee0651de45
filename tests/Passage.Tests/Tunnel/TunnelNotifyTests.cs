using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>The service manager's notifications (NOTIFY_SOCKET), read from a Unix datagram socket as systemd would.</summary>
public sealed class TunnelNotifyTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_client_end_sends_READY_after_its_first_attempt_then_STATUS_then_STOPPING(bool abstractName)
    {
        await using var pair = await TunnelPair.StartAsync();
        var name = abstractName ? $"@passage-notify-{Guid.NewGuid():N}" : Path.Combine(pair.Directory, "notify.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(abstractName ? "\0" + name[1..] : name));
        var environment = new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = name, ["WATCHDOG_USEC"] = "400000", ["WATCHDOG_PID"] = null };
        await using var client = pair.StartEnd("notified.json", TunnelPair.ClientConfig(pair.ServerId, pair.TunnelPort, pair.ClientKey, ""), environment);

        var messages = new List<string>();
        async Task<string> NextAsync()
        {
            var buffer = new byte[4096];
            using var cts = new CancellationTokenSource(Timeouts.Default);
            var n = await listener.ReceiveAsync(buffer, SocketFlags.None, cts.Token);
            var message = Encoding.UTF8.GetString(buffer, 0, n);
            messages.Add(message);
            return message;
        }

        string ready;
        do
        {
            ready = await NextAsync();
        }
        while (!ready.Contains("READY=1", StringComparison.Ordinal));
        // waitForFirstAttempt (the default): READY comes once the first attempt has ended, here with the tunnel up.
        Assert.Contains("STATUS=tunnel up", ready);
        Assert.Contains(messages, m => m == "WATCHDOG=1");

        // The server end goes: the status says so, with the reason.
        await pair.KillServerAsync();
        string status;
        do
        {
            status = await NextAsync();
        }
        while (!status.StartsWith("STATUS=tunnel down", StringComparison.Ordinal));
        Assert.Matches("^STATUS=tunnel down: (connection_terminated|connection_refused): ", status);

        client.Signal();
        string stopping;
        do
        {
            stopping = await NextAsync();
        }
        while (!stopping.Contains("STOPPING=1", StringComparison.Ordinal));
        await client.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, client.ExitCode);

        var order = messages.Where(m => m != "WATCHDOG=1").ToList();
        var readyAt = order.FindIndex(m => m.Contains("READY=1", StringComparison.Ordinal));
        var downAt = order.FindIndex(m => m.StartsWith("STATUS=tunnel down", StringComparison.Ordinal));
        var stoppingAt = order.FindIndex(m => m.Contains("STOPPING=1", StringComparison.Ordinal));
        Assert.True(readyAt < downAt && downAt < stoppingAt, string.Join(" | ", messages));
    }

    [Fact]
    public async Task The_server_end_sends_READY_with_its_address_and_STOPPING_on_SIGTERM()
    {
        await using var pair = await TunnelPair.StartAsync();
        var path = Path.Combine(pair.Directory, "server-notify.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        var port = TunnelPair.FreePort();
        await using var server = pair.StartEnd("notified-server.json",
            pair.ServerConfig("").Replace($"127.0.0.1:{pair.TunnelPort}", $"127.0.0.1:{port}", StringComparison.Ordinal),
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path });
        var buffer = new byte[4096];
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var ready = Encoding.UTF8.GetString(buffer, 0, await listener.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
        Assert.Equal($"READY=1\nSTATUS=listening on 127.0.0.1:{port}", ready);
        server.Signal();
        var stopping = Encoding.UTF8.GetString(buffer, 0, await listener.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
        Assert.StartsWith("STOPPING=1\nSTATUS=stopping", stopping);
        await server.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, server.ExitCode);
    }
}
