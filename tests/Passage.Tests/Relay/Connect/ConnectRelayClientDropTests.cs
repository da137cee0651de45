using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>HTTP/2 clients that go away without a word: an ordinary end, not something to log as an error.</summary>
public sealed class ConnectRelayClientDropTests
{
    /// <summary>
    /// A client drops its TCP connection (a reset: no GOAWAY, no TLS close_notify) while its extended CONNECT tunnel
    /// is open, with echoed bytes on their way to it or with the tunnel quiet. Kestrel used to log such a drop as
    /// "Unexpected exception in TimingPipeFlusher.FlushAsync" at error level with a stack trace (when a write to the
    /// client failed first), or on the plain endpoint as "Connection processing ended abnormally" at warning level
    /// (when a read did), so any client could write such lines at will. Over TLS (ALPN h2) and over the plain
    /// endpoint (prior knowledge), nothing at warning level or above is logged for it, and the relay lets go of the
    /// connection and the tunnel.
    /// </summary>
    [Theory]
    [InlineData(true, true)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(false, false)]
    public async Task A_client_that_drops_its_connection_mid_tunnel_is_logged_as_no_error(bool tls, bool bytesInFlight)
    {
        var log = new RecordingLogger();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(loggerFactory: log.Factory());
        Socket? socket = null;
        using var client = relay.CreateHttp2Client(handler => handler.ConnectCallback = async (context, cancellationToken) =>
        {
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
            return new NetworkStream(socket, ownsSocket: true);
        });
        if (!tls)
        {
            client.BaseAddress = new Uri($"http://127.0.0.1:{relay.PlainPort}");
        }

        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var tunnel = await response.Content.ReadAsStreamAsync();
        var data = new byte[1000];
        await tunnel.WriteAsync(data);
        await tunnel.FlushAsync();
        await tunnel.ReadExactlyAsync(new byte[data.Length]).AsTask().WaitAsync(Timeouts.Default);
        if (bytesInFlight)
        {
            // More bytes, whose echo the client will never read.
            await tunnel.WriteAsync(data);
            await tunnel.FlushAsync();
        }
        socket!.LingerState = new LingerOption(true, 0);
        socket.Close();

        await Timeouts.WaitUntilAsync(
            () => relay.Counter("passage.relay.connections.open") == 0 && relay.Counter("passage.relay.tunnels.open") == 0,
            () => $"connections open {relay.Counter("passage.relay.connections.open")}, tunnels open {relay.Counter("passage.relay.tunnels.open")}");
        var loud = log.Entries.Where(e => e.Level >= LogLevel.Warning).Select(e => $"{e.Level}: {e.Message} {e.Exception}").ToList();
        Assert.True(loud.Count == 0, string.Join("\n", loud));
        // Counted as the client's end, not as a shutdown: the relay is still running. The tunnel and its connection alike.
        Assert.Equal(2, relay.Counter("passage.relay.connections.closed/client_failed"));
        Assert.Equal(1, relay.Total("passage.relay.connections.closed", "connect_h2"));
        Assert.Equal(1, relay.Total("passage.relay.connections.closed", "connect"));
        Assert.Equal(0, relay.Counter("passage.relay.connections.closed/shutdown"));
    }

    /// <summary>
    /// A client that resets its stream while the relay is still resolving and dialing its destination: nobody is left to
    /// answer, and it is counted as a client gone, not as the relay shutting down.
    /// </summary>
    [Fact]
    public async Task A_stream_reset_while_the_relay_dials_is_counted_client_closed()
    {
        var asked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = await ConnectHarness.StartAsync(dns: async (name, cancellationToken) =>
        {
            // A DNS server that never answers, until the lookup is given up.
            asked.TrySetResult();
            await Task.Delay(Timeout.Infinite, cancellationToken);
            return [];
        });
        using var client = relay.CreateHttp2Client();
        using var giveUp = new CancellationTokenSource();
        using var request = ConnectHarness.ExtendedConnect("silent.test", 443);
        var sending = client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, giveUp.Token);
        await asked.Task.WaitAsync(Timeouts.Default);
        giveUp.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => sending);

        await Timeouts.WaitUntilAsync(
            () => relay.Counter("passage.relay.connections.refused/client_closed") == 1,
            () => $"client_closed {relay.Counter("passage.relay.connections.refused/client_closed")}, proxy_shutting_down {relay.Counter("passage.relay.connections.refused/proxy_shutting_down")}");
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/proxy_shutting_down"));
    }

    /// <summary>
    /// An HTTP/1.1 client that resets its connection, or ends it with nothing sent behind its CONNECT (over TLS: without a
    /// close_notify, as a killed process's), while the relay is still resolving its destination: the dial is given up and
    /// its slot freed at once, as for an HTTP/2 client's reset, counted as a client gone. It used to go on until the
    /// connect timeout (here never: the name is never answered), and then reach the destination for nobody.
    /// </summary>
    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    [InlineData(true, true)]
    public async Task An_http1_client_gone_while_the_relay_dials_ends_the_dial(bool tls, bool reset)
    {
        var dns = new HeldDns();
        await using var relay = await ConnectHarness.StartAsync(dns: dns.LookupAsync);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, tls ? relay.TlsPort : relay.PlainPort));
        var head = "CONNECT silent.test:443 HTTP/1.1\r\nHost: silent.test:443\r\n\r\n"u8.ToArray();
        SslStream? secure = null;
        if (tls)
        {
            secure = await ConnectHarness.TlsToRelayAsync(new NetworkStream(socket, ownsSocket: false));
            await secure.WriteAsync(head);
        }
        else
        {
            await socket.SendAsync(head);
        }
        await dns.Asked.WaitAsync(Timeouts.Default);
        Assert.Equal(1, relay.Relay.OpenTunnels);

        if (reset)
        {
            socket.LingerState = new LingerOption(true, 0);
            socket.Close();
        }
        else
        {
            socket.Shutdown(SocketShutdown.Send);
        }

        await Timeouts.WaitUntilAsync(
            () => relay.Counter("passage.relay.connections.refused/client_closed") == 1 && relay.Relay.OpenTunnels == 0,
            () => $"client_closed {relay.Counter("passage.relay.connections.refused/client_closed")}, {relay.Relay.OpenTunnels} open");
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/proxy_shutting_down"));
        secure?.Dispose();
    }

    /// <summary>
    /// A client that sent its first tunnel bytes behind its CONNECT and then ended its sending (a one-shot request) still
    /// gets its tunnel: only an end with nothing sent behind the head is taken for leaving.
    /// </summary>
    [Fact]
    public async Task An_http1_client_that_sent_bytes_behind_its_connect_and_ended_its_sending_still_gets_its_tunnel()
    {
        var dns = new HeldDns();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(dns: dns.LookupAsync);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.PlainPort));
        await socket.SendAsync(System.Text.Encoding.ASCII.GetBytes($"CONNECT slow.test:{echo.Port} HTTP/1.1\r\nHost: slow.test:{echo.Port}\r\n\r\nping"));
        await dns.Asked.WaitAsync(Timeouts.Default);
        socket.Shutdown(SocketShutdown.Send);
        // The relay reads what came with the head, or after it, while it dials: either way it is the tunnel's.
        await Task.Yield();
        dns.Answer(IPAddress.Loopback);

        var answer = System.Text.Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(socket).WaitAsync(Timeouts.Default));
        Assert.StartsWith("HTTP/1.1 200 ", answer);
        Assert.EndsWith("\r\n\r\nping", answer);
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/client_closed"));
    }
}
