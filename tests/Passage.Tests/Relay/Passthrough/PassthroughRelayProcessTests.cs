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

    [Fact]
    public async Task Sigterm_stops_accepting_lets_open_connections_finish_and_exits_cleanly()
    {
        var (echoTask, echoPort, echoListener) = StartEcho();
        using var _ = echoListener;
        await using var relay = PassageProcess.Start([
            "relay", "--passthrough", "127.0.0.1:0", "--upstream", $"127.0.0.1:{echoPort}", "--allow-private", "--drain-timeout", "20s",
        ]);
        var port = await relay.WaitForListeningPortAsync();

        // An open relayed connection (a ClientHello-shaped first record gets it past the reader).
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port));
        var hello = SyntheticHello.WithServerName("origin.test");
        await Loopback.SendAllAsync(client, hello);
        Assert.Equal(hello, await Loopback.ReadToEndAsync(client, limit: hello.Length));

        relay.Signal(PassageProcess.SigTerm);
        await relay.WaitForLineAsync(l => l.Contains("Stopping", StringComparison.Ordinal));

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
        Assert.Contains("0 connections were closed at the drain deadline", relay.Output);
        await echoTask.WaitAsync(Timeouts.Default);
    }

    /// <summary>A one-connection echo server: sends back whatever it receives, half-closes at end of stream.</summary>
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
