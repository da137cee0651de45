using Passage.Cli.Hosting;
using Passage.Tests.Infrastructure;

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
}
