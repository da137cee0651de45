using System.Net.Sockets;
using System.Text;
using Passage.Client.HttpProxy;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>
/// One plain <c>http://</c> request through the client's HTTP proxy, a relay and a real origin, all on loopback: how the
/// application's connection and the tunnel end around the origin's answer.
/// </summary>
public sealed class HttpProxySessionTests
{
    /// <summary>A body larger than every buffer between the application and an origin that does not read it.</summary>
    private const int LargeBody = 64 * 1024 * 1024;

    /// <summary>
    /// An origin that answers an upload early (413, without reading it) and then goes away with the body unread resets its
    /// connection, and so the tunnel, while the application still sends. Its answer is out whole by then: the application
    /// keeps it, the rest of its body is read and dropped, and its connection ends gracefully. The proxy used to abort the
    /// application's connection as the body's write to the broken tunnel failed: the upload failed with a reset, and an
    /// application that reads its answer only after sending its body lost the answer to it.
    /// </summary>
    [Fact]
    public async Task An_answer_out_whole_before_the_body_is_whole_is_kept_and_the_rest_of_the_body_is_dropped()
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin, sending) = await StartUploadAsync(path);
        using var _ = app;
        using var __ = origin;
        await Loopback.SendAllAsync(origin, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large"u8.ToArray());
        Assert.Equal("HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large",
            Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));

        origin.LingerState = new LingerOption(true, 0);
        origin.Close();
        await sending.WaitAsync(Timeouts.Default);
        app.Shutdown(SocketShutdown.Send);
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections open");
    }

    /// <summary>
    /// An origin that answers an upload early (413) and then neither reads the body nor goes away leaves the body's write to
    /// the tunnel waiting for good. Once the answer is whole, a write the tunnel has not taken for a while is given up (the
    /// tunnel reset, which ends the origin's connection), and the rest of the body is read and dropped: the application's
    /// upload ends, its connection closes gracefully with its answer whole, and no tunnel is left. The waiting write used to
    /// hold the application's sends, the tunnel and the application's connection until the idle timeout (5 min).
    /// </summary>
    [Fact]
    public async Task A_body_write_the_origin_never_takes_is_given_up_after_the_whole_answer()
    {
        // A small window: the tunnel takes little beyond what the relay holds for the origin, and its writes wait soon.
        await using var path = await ProxyInProcess.StartAsync(o => o with { StreamWindowBytes = 64 * 1024 });
        var (app, origin, sending) = await StartUploadAsync(path);
        using var _ = app;
        using var __ = origin;
        await Timeouts.WaitUntilAsync(() => origin.Available > 0);
        await Loopback.SendAllAsync(origin, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large"u8.ToArray());
        Assert.Equal("HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large",
            Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));

        await sending.WaitAsync(Timeouts.Default);
        app.Shutdown(SocketShutdown.Send);
        await Timeouts.WaitUntilAsync(() => path.Relay.Relay.OpenTunnels == 0, () => $"{path.Relay.Relay.OpenTunnels} tunnels open at the relay");
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections open");
    }

    /// <summary>
    /// An origin that ignores the request's Connection: close keeps its connection open after its whole answer. The
    /// application is answered, and the client ends the tunnel after a brief wait for the origin's end (the relay then
    /// closes the origin's connection), and lets the application's connection go. Both used to be held until the idle
    /// timeout.
    /// </summary>
    [Fact]
    public async Task A_tunnel_whose_origin_ignores_connection_close_ends_after_the_whole_answer()
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin) = await path.SendAsync($"GET http://origin.test:{path.OriginPort}/a HTTP/1.1\r\n\r\n");
        using var _ = app;
        using var __ = origin;
        Assert.EndsWith("\r\nConnection: close\r\n\r\n", await ConnectHarness.ReadHeadAsync(origin));
        await Loopback.SendAllAsync(origin, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));
        app.Shutdown(SocketShutdown.Send);

        await Timeouts.WaitUntilAsync(() => path.Relay.Relay.OpenTunnels == 0, () => $"{path.Relay.Relay.OpenTunnels} tunnels open at the relay");
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections open");
        try
        {
            Assert.Empty(await Loopback.ReadToEndAsync(origin));
        }
        catch (SocketException)
        {
            // The relay reset the origin's connection as the tunnel ended: it ended all the same.
        }
    }

    /// <summary>
    /// An origin that answers an upload early and keeps its connection open is waited for briefly, as above, though the
    /// application still holds its connection with its body unfinished: the tunnel ends after that wait, and the
    /// application's connection alone is kept for the rest of the body. The tunnel used to be held with it, until the
    /// application had sent its whole body or the idle timeout.
    /// </summary>
    [Fact]
    public async Task A_tunnel_whose_origin_keeps_its_side_open_ends_though_the_application_is_still_sending()
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin) = await path.SendAsync($"PUT http://origin.test:{path.OriginPort}/upload HTTP/1.1\r\nContent-Length: 1000\r\n\r\nabc");
        using var _ = app;
        using var __ = origin;
        await ConnectHarness.ReadHeadAsync(origin);
        await Loopback.SendAllAsync(origin, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large"u8.ToArray());
        Assert.Equal("HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large",
            Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));

        await Timeouts.WaitUntilAsync(() => path.Relay.Relay.OpenTunnels == 0, () => $"{path.Relay.Relay.OpenTunnels} tunnels open at the relay");
        Assert.Equal(1, path.OpenAppConnections);
        await Loopback.SendAllAsync(app, new byte[997]);
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections open");
    }

    /// <summary>
    /// Once the answer is out whole and the request was whole, the tunnel ends (the origin reads the request's end, and the
    /// relay holds no tunnel) and the application's connection is let go, though the application keeps its side open, as
    /// a client that pools connections may. They used to be held until the application closed, or the idle timeout.
    /// </summary>
    [Fact]
    public async Task The_tunnel_and_the_application_s_connection_end_with_a_whole_answer_to_a_whole_request()
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin) = await path.SendAsync($"POST http://origin.test:{path.OriginPort}/a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        using var _ = app;
        using var __ = origin;
        await ConnectHarness.ReadHeadAsync(origin);
        Assert.Equal("hello", Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(origin, limit: 5)));
        await Loopback.SendAllAsync(origin, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"u8.ToArray());
        origin.Shutdown(SocketShutdown.Send);
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));

        Assert.Empty(await Loopback.ReadToEndAsync(origin));
        await Timeouts.WaitUntilAsync(() => path.Relay.Relay.OpenTunnels == 0, () => $"{path.Relay.Relay.OpenTunnels} tunnels open at the relay");
        await Timeouts.WaitUntilAsync(() => path.OpenAppConnections == 0, () => $"{path.OpenAppConnections} application connections open");
    }

    /// <summary>
    /// An origin that resets its connection without answering, while the body is on its way, breaks the tunnel under both
    /// directions at once: the body's write to it fails as the read of the answer does. Whichever fails first, the
    /// application is told in a 502, and the rest of its body is dropped. The write's failure used to abort the application's
    /// connection when it came first: a reset instead of the 502, or a 502 cut short.
    /// </summary>
    [Fact]
    public async Task A_tunnel_that_breaks_under_the_body_before_the_answer_is_a_502()
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin, sending) = await StartUploadAsync(path);
        using var _ = app;
        using var __ = origin;
        // The body is on its way: its writes to the tunnel wait for an origin that does not read.
        await Timeouts.WaitUntilAsync(() => origin.Available > 0);

        origin.LingerState = new LingerOption(true, 0);
        origin.Close();
        var answer = Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\n", answer);
        // Whether the relay's read of the origin or its write of the body meets the reset first, the relay passes a reset
        // on, never the origin's clean end ("the origin closed without answering" came in about one run in ten when the
        // write met it first).
        Assert.True(answer.Contains("\r\nProxy-Status: passage; error=http_response_incomplete; details=\"the tunnel broke before the origin answered\"\r\n"), answer);
        Assert.EndsWith("\r\n\r\n", answer);
        await sending.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// RFC 9110 §7.6.2: an OPTIONS or TRACE whose Max-Forwards is 0 has this proxy for its final recipient. It answers an
    /// OPTIONS itself, and refuses a TRACE (no echo of a head whose credentials it does not keep): no tunnel is opened. Both
    /// tell the same methods allowed (the 405 used to say CONNECT alone, while the OPTIONS it answers said CONNECT, OPTIONS).
    /// </summary>
    [Theory]
    [InlineData("OPTIONS", "HTTP/1.1 200 OK\r\nAllow: CONNECT, OPTIONS\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")]
    [InlineData("TRACE", "HTTP/1.1 405 Method Not Allowed\r\nProxy-Status: passage; error=http_request_denied; details=\"TRACE is not echoed by this proxy\"\r\nAllow: CONNECT, OPTIONS\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")]
    public async Task An_options_or_trace_with_max_forwards_0_is_answered_by_the_proxy(string method, string answer)
    {
        await using var path = await ProxyInProcess.StartAsync();
        using var app = await path.ConnectAppAsync();
        await Loopback.SendAllAsync(app, Encoding.ASCII.GetBytes($"{method} http://origin.test:{path.OriginPort}/ HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n"));
        Assert.Equal(answer, Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));
        Assert.Equal(0, path.Relay.Counter("passage.relay.tunnels.opened"));
    }

    /// <summary>RFC 9110 §7.6.2: with Max-Forwards above 0, an OPTIONS or TRACE goes on with one less.</summary>
    [Theory]
    [InlineData("OPTIONS")]
    [InlineData("TRACE")]
    public async Task An_options_or_trace_with_max_forwards_above_0_goes_on_with_one_less(string method)
    {
        await using var path = await ProxyInProcess.StartAsync();
        var (app, origin) = await path.SendAsync($"{method} http://origin.test:{path.OriginPort}/ HTTP/1.1\r\nMax-Forwards: 1\r\n\r\n");
        using var _ = app;
        using var __ = origin;
        Assert.Equal($"{method} / HTTP/1.1\r\nHost: origin.test:{path.OriginPort}\r\nMax-Forwards: 0\r\nConnection: close\r\n\r\n", await ConnectHarness.ReadHeadAsync(origin));
    }

    /// <summary>
    /// The body's bytes dropped after the tunnel broke under them never reached the origin, and are not counted as delivered
    /// (passage.client.bytes): counts stay right on errors. The application reads nothing while the origin's interim answers
    /// wait for it, so the proxy meets the break first in the body's writes, and all of the body is read and dropped before
    /// the 502. The whole body used to be counted as delivered upstream, though the origin read none of it.
    /// </summary>
    [Fact]
    public async Task Body_bytes_dropped_after_the_tunnel_broke_are_not_counted_as_delivered()
    {
        // The tunnel takes no more than the relay's window beyond what the relay passed on to the origin.
        const int window = 64 * 1024;
        await using var path = await ProxyInProcess.StartAsync(o => o with { StreamWindowBytes = window });
        var (app, origin, sending) = await StartUploadAsync(path, receiveBufferSize: 4096);
        using var _ = app;
        using var __ = origin;
        await Timeouts.WaitUntilAsync(() => origin.Available > 0);
        // Far more than the application's buffer and the proxy's take: the proxy's writes of them to the application wait.
        var interim = Encoding.ASCII.GetBytes("HTTP/1.1 102 Processing\r\nX-Pad: " + new string('a', 60 * 1024) + "\r\n\r\n");
        for (var i = 0; i < OriginAnswerConnection.MaxInterim; i++)
        {
            await Loopback.SendAllAsync(origin, interim);
        }
        await Timeouts.WaitUntilAsync(() => app.Available > 0);

        origin.LingerState = new LingerOption(true, 0);
        origin.Close();
        await sending.WaitAsync(Timeouts.Default);
        var answer = Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app));
        Assert.Contains("HTTP/1.1 502 Bad Gateway\r\n", answer);
        // The head and what the relay held when the origin went (its window, and the pump's buffer it read into).
        var taken = path.Relay.Metrics.Bytes.ToUpstream + 2 * window;
        Assert.True(path.Bytes.ToUpstream <= taken, $"{path.Bytes.ToUpstream} bytes counted as delivered upstream; the tunnel took at most {taken}");
    }

    /// <summary>
    /// A CONNECT whose fields announce content (RFC 9110 §9.3.6: it has none) is refused 400 with the reason, as the relay
    /// refuses it, without a tunnel: the "content" behind its head used to be sent to the destination as the tunnel's
    /// first bytes.
    /// </summary>
    [Theory]
    [InlineData("Content-Length: 5", "content on a CONNECT request")]
    [InlineData("Transfer-Encoding: chunked", "Transfer-Encoding on a CONNECT request")]
    public async Task A_connect_with_content_is_a_400_and_opens_no_tunnel(string field, string detail)
    {
        await using var path = await ProxyInProcess.StartAsync();
        using var app = await path.ConnectAppAsync();
        await Loopback.SendAllAsync(app, Encoding.ASCII.GetBytes(
            $"CONNECT origin.test:{path.OriginPort} HTTP/1.1\r\nHost: origin.test:{path.OriginPort}\r\n{field}\r\n\r\nHELLO"));
        Assert.Equal(
            $"HTTP/1.1 400 Bad Request\r\nProxy-Status: passage; error=http_request_error; details=\"{detail}\"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(app)));
        Assert.Equal(0, path.Relay.Counter("passage.relay.tunnels.opened"));
    }

    /// <summary>
    /// Starts an upload of <see cref="LargeBody"/> bytes through the proxy, its head read by the origin: the application
    /// sends its body in a task of its own (which fails if the connection is reset), whatever comes back meanwhile.
    /// </summary>
    private static async Task<(Socket App, Socket Origin, Task Sending)> StartUploadAsync(ProxyInProcess path, int? receiveBufferSize = null)
    {
        var (app, origin) = await path.SendAsync($"PUT http://origin.test:{path.OriginPort}/upload HTTP/1.1\r\nContent-Length: {LargeBody}\r\n\r\n", receiveBufferSize);
        var sending = Task.Run(async () =>
        {
            var chunk = new byte[64 * 1024];
            for (var sent = 0; sent < LargeBody; sent += chunk.Length)
            {
                await Loopback.SendAllAsync(app, chunk.AsMemory(0, Math.Min(chunk.Length, LargeBody - sent)));
            }
        });
        await ConnectHarness.ReadHeadAsync(origin);
        return (app, origin, sending);
    }
}
