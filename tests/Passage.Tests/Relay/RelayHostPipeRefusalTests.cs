using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Tests.Transport;
using Passage.Transport;

namespace Passage.Tests.Relay;

/// <summary>
/// A relay says in its log, once per cause, when a spliced direction first finds no pipe and copies instead: the
/// counter goes on counting, the log line tells the operator there is a counter to watch and what to raise.
/// </summary>
[Collection(PipeAccountingCollection.Name)]
public sealed class RelayHostPipeRefusalTests
{
    [Fact]
    public async Task The_first_burst_without_a_pipe_is_logged_once_per_cause_and_a_stopped_relay_says_nothing()
    {
        if (!OperatingSystem.IsLinux() || !LinuxSplice.IsAvailable)
        {
            return;
        }
        using var directory = new TemporaryDirectory();
        await using var echo = new EchoServer();
        var log = new RecordingLogger();
        using var factory = log.Factory();
        var cap = SplicePipe.MaxOpen;
        await using (var host = await RelayHost.StartAsync(PlainConnect(directory.Path), factory))
        {
            try
            {
                // No pipe may be opened: every burst through the tunnel is copied, for want of descriptors (EMFILE).
                SplicePipe.CloseSpares();
                SplicePipe.MaxOpen = 0;
                for (var tunnel = 0; tunnel < 2; tunnel++)
                {
                    await EchoThroughAsync(host.Connect!.LocalPlainEndpoints[0], echo.Port);
                }
            }
            finally
            {
                SplicePipe.MaxOpen = cap;
            }
            var said = Assert.Single(log.Named("SplicePipesOutOfDescriptors"));
            Assert.Equal(LogLevel.Warning, said.Level);
            Assert.Equal("EMFILE", said.Value("Error"));
            Assert.Contains("at most 0 pipes", said.Message);
            Assert.Contains("passage_relay_splice_fallbacks_total{reason=\"no_pipe\"}", said.Message);
            Assert.Empty(log.Named("SplicePipeQuotaReached"));
        }

        // A stopped relay no longer listens for the process's pipe refusals.
        SpliceFallbacks.CountNoPipe(LinuxSplice.ENOBUFS);
        Assert.Empty(log.Named("SplicePipeQuotaReached"));

        // Past the user's pipe quota (the kernel would give two-page pipes; SplicePipe.Rent says ENOBUFS, as
        // SplicePipeLeakTests shows with a real quota): its own warning, with what to raise, once.
        var second = new RecordingLogger();
        using var secondFactory = second.Factory();
        await using (var host = await RelayHost.StartAsync(PlainConnect(directory.Path), secondFactory))
        {
            SpliceFallbacks.CountNoPipe(LinuxSplice.ENOBUFS);
            SpliceFallbacks.CountNoPipe(LinuxSplice.ENOBUFS);
            var said = Assert.Single(second.Named("SplicePipeQuotaReached"));
            Assert.Equal(LogLevel.Warning, said.Level);
            Assert.Contains("fs.pipe-user-pages-soft", said.Message);
            Assert.Empty(second.Named("SplicePipesOutOfDescriptors"));
        }
    }

    private static RelayOptions PlainConnect(string keyDirectory) => new()
    {
        Connect = new ConnectOptions
        {
            PlainEndpoints = [new IPEndPoint(IPAddress.Loopback, 0)],
            KeyFile = Path.Combine(keyDirectory, "relay.pem"),
            Allow = ["*:*"],
        },
        Destinations = new DestinationOptions { AllowPrivate = true },
    };

    /// <summary>Opens a tunnel to the echo server, sends 2 MiB (more than a first read, so a pipe is wanted) and reads them back.</summary>
    private static async Task EchoThroughAsync(IPEndPoint relay, int echoPort)
    {
        var (socket, head) = await ConnectHarness.RequestTunnelAsync(relay.Port, $"127.0.0.1:{echoPort}");
        using var _ = socket;
        Assert.StartsWith("HTTP/1.1 200", head, StringComparison.Ordinal);
        var payload = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var sending = Loopback.SendAllAsync(socket, payload);
        Assert.Equal(payload, await Loopback.ReadToEndAsync(socket, limit: payload.Length));
        await sending.WaitAsync(Timeouts.Default);
    }
}
