using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Cli;

/// <summary>The relay's log must never hold up its traffic, as a real process whose log nobody reads.</summary>
public sealed class RelayLogBackpressureTests
{
    /// <summary>
    /// At debug level every tunnel writes two lines. With standard error unread, the pipe fills after a few
    /// hundred tunnels and the logger's queue (2,500 lines) after about a thousand more; from then on, a logger
    /// that waits for room would stop every thread that logs, the relay's I/O threads among them.
    /// </summary>
    [Fact]
    public async Task With_its_log_unread_the_relay_keeps_relaying_and_says_later_how_many_lines_it_dropped()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--log-level", "debug"), readStandardError: false);
        var port = await ConnectHarness.PlainPortAsync(relay);

        const int Workers = 4, PerWorker = 750;
        await Task.WhenAll(Enumerable.Range(0, Workers).Select(async worker =>
        {
            for (var i = 0; i < PerWorker; i++)
            {
                await EchoThroughAsync(port, echo.Port, $"worker {worker} tunnel {i}");
            }
        })).WaitAsync(TimeSpan.FromSeconds(120));
        Assert.False(relay.HasExited);

        // Once its log is read again, the first line that finds room in the queue comes after a note that lines
        // were dropped (the framework's wording). Lines logged while the queue still drains are dropped too.
        relay.StartReadingStandardError();
        for (var i = 0; i < 100 && !relay.StandardError.Contains("message(s) dropped", StringComparison.Ordinal); i++)
        {
            await EchoThroughAsync(port, echo.Port, $"after {i}");
            await Task.Delay(50);
        }
        Assert.Contains("message(s) dropped", relay.StandardError);
    }

    private static async Task EchoThroughAsync(int relayPort, int echoPort, string what)
    {
        var (socket, head) = await ConnectHarness.RequestTunnelAsync(relayPort, $"127.0.0.1:{echoPort}");
        using var _ = socket;
        using var cts = new CancellationTokenSource(Timeouts.Default);
        Assert.True(head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal), $"{what}: {head}");
        var payload = Encoding.ASCII.GetBytes(what.PadRight(32, '.'));
        await Loopback.SendAllAsync(socket, payload);
        var back = new byte[payload.Length];
        var got = 0;
        while (got < back.Length)
        {
            var n = await socket.ReceiveAsync(back.AsMemory(got), SocketFlags.None, cts.Token);
            Assert.True(n > 0, $"{what}: the tunnel closed after {got} bytes");
            got += n;
        }
        Assert.Equal(payload, back);
    }
}
