using System.Net.Sockets;
using System.Text;
using Passage.Cli.Hosting;
using Passage.Tests.Infrastructure;
using Passage.Tests.Tunnel;

namespace Passage.Tests.Cli;

/// <summary>NOTIFY_SOCKET values no service manager's socket can have: the service runs all the same, as under sd_notify(3).</summary>
public sealed class NotifySocketTests
{
    // Longer than the 108 bytes of a Unix socket's address (sun_path).
    private static readonly string TooLong = "/tmp/" + new string('n', 200);

    /// <summary>A name too long for a socket's address is an error of each send, not an exception out of the start.</summary>
    [Fact]
    public void A_name_too_long_for_a_socket_address_fails_each_send()
    {
        using var notify = SdNotify.Create(TooLong);
        Assert.Contains("NOTIFY_SOCKET", notify.Send("READY=1"), StringComparison.Ordinal);
        using var abstractName = SdNotify.Create("@" + new string('n', 200));
        Assert.NotNull(abstractName.Send("READY=1"));
    }

    /// <summary>
    /// A service manager that stops reading: once its socket's queue is full a send says so at once. Sends blocked there,
    /// and with them a stop waiting to say STOPPING=1 or a tunnel's change of state.
    /// </summary>
    [Fact]
    public async Task A_send_to_a_manager_that_does_not_read_fails_at_once_once_its_queue_is_full()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.File("notify");
        // Disposed after the manager's socket, whose close ends a send left blocked there (were it to block again).
        using var notify = SdNotify.Create(path);
        using var manager = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        manager.Bind(new UnixDomainSocketEndPoint(path));

        var error = await Task.Run(() =>
        {
            // The queue holds net.unix.max_dgram_qlen datagrams (512 by default) or the socket's buffer's worth.
            for (var i = 0; i < 100_000; i++)
            {
                if (notify.Send("WATCHDOG=1") is { } failed)
                {
                    return failed;
                }
            }
            return null;
        }).WaitAsync(Timeouts.Default);
        Assert.Contains("not reading its notifications", error, StringComparison.Ordinal);
    }

    /// <summary>The relay under such a NOTIFY_SOCKET starts, serves and stops: it ended in a stack trace before it listened.</summary>
    [Fact]
    public async Task A_relay_under_a_NOTIFY_SOCKET_too_long_starts_and_stops()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "127.0.0.1:0", "--key", directory.File("relay.pem")],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = TooLong });

        await relay.WaitForListeningPortAsync();
        relay.Signal();
        await relay.WaitForExitAsync(Timeouts.Default);
        Assert.True(relay.ExitCode == 0, relay.Output);
        Assert.DoesNotContain("Unhandled exception", relay.StandardError);
    }

    /// <summary>
    /// A NOTIFY_SOCKET the relay cannot send to (here a regular file) is a warning in its log, as in the tunnel's, and the
    /// relay runs on: it said nothing, and a unit of Type=notify was killed at its start timeout without a word why.
    /// </summary>
    [Fact]
    public async Task A_relay_that_cannot_notify_says_so_and_runs_on()
    {
        using var directory = new TemporaryDirectory();
        var notASocket = directory.Write("notify", "");
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "127.0.0.1:0", "--key", directory.File("relay.pem")],
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = notASocket });

        var warning = await relay.WaitForLineAsync(line => line.Contains("[128]", StringComparison.Ordinal));
        Assert.Contains("warn:", warning);
        Assert.Contains("could not notify the service manager at NOTIFY_SOCKET", warning);
        relay.Signal();
        await relay.WaitForExitAsync(Timeouts.Default);
        Assert.True(relay.ExitCode == 0, relay.Output);
    }

    /// <summary>
    /// A watchdog timeout whose share (WATCHDOG_USEC × system.watchdogFactor) is under the millisecond a timer can wait, or
    /// past the longest one it can (about 49.7 days): the watchdog is fed all the same, and the end stops cleanly. The
    /// timer threw, so no WATCHDOG=1 was ever sent (the service manager would kill the end), and the exception came out of
    /// the stop as a stack trace.
    /// </summary>
    [Theory]
    [InlineData("1")]
    [InlineData("10000000000000")]
    public async Task A_tunnel_end_feeds_a_watchdog_whose_interval_is_past_a_timer_s_bounds(string watchdogMicroseconds)
    {
        await using var pair = await TunnelPair.StartAsync();
        var path = Path.Combine(pair.Directory, "watchdog-notify.sock");
        using var listener = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        var port = TunnelPair.FreePort();
        await using var server = pair.StartEnd("watchdog-server.json",
            pair.ServerConfig("").Replace($"127.0.0.1:{pair.TunnelPort}", $"127.0.0.1:{port}", StringComparison.Ordinal),
            new Dictionary<string, string?> { ["NOTIFY_SOCKET"] = path, ["WATCHDOG_USEC"] = watchdogMicroseconds, ["WATCHDOG_PID"] = null });

        // Read as the service manager reads, to the end: a sender whose datagrams nobody reads waits once the queue is full.
        var fed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource();
        var reading = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            try
            {
                while (true)
                {
                    if (Encoding.UTF8.GetString(buffer, 0, await listener.ReceiveAsync(buffer, SocketFlags.None, stop.Token)) == "WATCHDOG=1")
                    {
                        fed.TrySetResult();
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        });
        await fed.Task.WaitAsync(Timeouts.Default);

        server.Signal();
        await server.WaitForExitAsync(Timeouts.Default);
        await stop.CancelAsync();
        await reading;
        Assert.True(server.ExitCode == 0, server.Output);
        Assert.DoesNotContain("Unhandled exception", server.StandardError);
    }
}
