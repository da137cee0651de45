using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>The CONNECT relay over TLS: curl, HttpClient, HTTP/2 multiplexing, mutual TLS.</summary>
public sealed class ConnectRelayTlsTests
{
    [Fact]
    public async Task Curl_reaches_an_https_origin_through_the_relay_pinning_its_key()
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = await ConnectHarness.StartAsync(o => o with { Allow = [$"origin.test:{origin.Port}"] });

        var (exit, body, error) = await Curl.RunAsync(
            "-p", "-x", $"https://127.0.0.1:{relay.TlsPort}", "--proxy-insecure", "--proxy-pinnedpubkey", relay.Pin,
            "--cacert", origin.CertificatePath, $"https://origin.test:{origin.Port}/");
        Assert.True(exit == 0, $"curl exit {exit}: {error}");
        Assert.StartsWith("origin origin.test saw remote=", body);

        // curl before 8.10 ignores --proxy-pinnedpubkey, so the relay's identity is checked here the
        // other way curl offers: its certificate (written beside the key) as the proxy's only CA.
        var (verified, _, verifyError) = await Curl.RunAsync(
            "-p", "-x", $"https://127.0.0.1:{relay.TlsPort}", "--proxy-cacert", relay.CertificatePath,
            "--cacert", origin.CertificatePath, $"https://origin.test:{origin.Port}/");
        Assert.True(verified == 0, verifyError);
        var (refused, _, _) = await Curl.RunAsync(
            "-p", "-x", $"https://127.0.0.1:{relay.TlsPort}", "--proxy-cacert", origin.CertificatePath,
            "--cacert", origin.CertificatePath, $"https://origin.test:{origin.Port}/");
        Assert.NotEqual(0, refused);
    }

    [Fact]
    public async Task HttpClient_with_the_relay_as_its_proxy_reaches_the_origin()
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = await ConnectHarness.StartAsync(o => o with { Allow = [$"origin.test:{origin.Port}"] });
        using var handler = new SocketsHttpHandler
        {
            Proxy = new WebProxy($"http://127.0.0.1:{relay.PlainPort}"),
            UseProxy = true,
            // The origin's name is known only to the relay (its map): the client never resolves it.
            SslOptions = new SslClientAuthenticationOptions
            {
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == origin.Certificate.GetCertHashString(),
            },
        };
        using var client = new HttpClient(handler) { Timeout = Timeouts.Default };
        var body = await client.GetStringAsync($"https://origin.test:{origin.Port}/");
        Assert.StartsWith("origin origin.test saw remote=", body);
    }

    [Fact]
    public async Task A_hundred_tunnels_share_one_http2_connection_and_each_moves_its_own_data()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        using var client = relay.CreateHttp2Client();

        async Task<bool> OneTunnelAsync(int index)
        {
            var data = RandomNumberGenerator.GetBytes(64 * 1024 + index * 517);
            using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            await using var tunnel = await response.Content.ReadAsStreamAsync();
            var reading = Task.Run(async () =>
            {
                var received = new MemoryStream();
                var buffer = new byte[16 * 1024];
                while (received.Length < data.Length)
                {
                    var n = await tunnel.ReadAsync(buffer);
                    if (n == 0)
                    {
                        break;
                    }
                    received.Write(buffer, 0, n);
                }
                return received.ToArray();
            });
            for (var offset = 0; offset < data.Length; offset += 8192)
            {
                await tunnel.WriteAsync(data.AsMemory(offset, Math.Min(8192, data.Length - offset)));
                await tunnel.FlushAsync();
            }
            var back = await reading.WaitAsync(Timeouts.Default);
            return SHA256.HashData(back).AsSpan().SequenceEqual(SHA256.HashData(data));
        }

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(OneTunnelAsync)).WaitAsync(TimeSpan.FromMinutes(2));
        Assert.All(results, Assert.True);
        Assert.Equal(1, relay.Counter("passage.relay.connections.accepted"));
        Assert.Equal(100, echo.Accepted);
        Assert.Equal(100, relay.Counter("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task A_stalled_tunnel_does_not_stall_the_others_on_its_connection()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        using var client = relay.CreateHttp2Client();

        // The stalled tunnel: its client writes far more than it reads, so its echo backs up.
        using var stalledRequest = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var stalledResponse = await client.SendAsync(stalledRequest, HttpCompletionOption.ResponseHeadersRead);
        var stalled = await stalledResponse.Content.ReadAsStreamAsync();
        var junk = new byte[256 * 1024];
        using var stopStalling = new CancellationTokenSource();
        var stalling = Task.Run(async () =>
        {
            try
            {
                while (!stopStalling.IsCancellationRequested)
                {
                    await stalled.WriteAsync(junk, stopStalling.Token);
                    await stalled.FlushAsync(stopStalling.Token);
                }
            }
            catch (Exception) when (stopStalling.IsCancellationRequested)
            {
                // Told to stop: a write cut short by that is expected, whatever it throws.
            }
        });

        // Meanwhile another tunnel on the same connection still round-trips.
        for (var i = 0; i < 3; i++)
        {
            using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            await using var tunnel = await response.Content.ReadAsStreamAsync();
            await tunnel.WriteAsync("ping"u8.ToArray());
            await tunnel.FlushAsync();
            var buffer = new byte[4];
            await tunnel.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("ping"u8.ToArray(), buffer);
        }
        Assert.Equal(1, relay.Counter("passage.relay.connections.accepted"));
        // The writer ends before the stream goes: disposing an HTTP/2 request stream while a write is in flight
        // fails inside the HTTP client (a NullReferenceException once in a full run).
        stopStalling.Cancel();
        await stalling.WaitAsync(Timeouts.Default);
        await stalled.DisposeAsync();
    }

    [Fact]
    public async Task Http2_refusals_carry_status_and_proxy_status()
    {
        await using var relay = await ConnectHarness.StartAsync(
            o => o with { Allow = ["origin.test:443"] }, allowPrivate: false);
        using var client = relay.CreateHttp2Client();

        using var denied = await client.SendAsync(ConnectHarness.ExtendedConnect("other.test", 443));
        Assert.Equal(HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Contains("error=http_request_denied", string.Join(",", denied.Headers.GetValues("Proxy-Status")));

        using var prohibited = await client.SendAsync(ConnectHarness.ExtendedConnect("origin.test", 443));
        Assert.Equal(HttpStatusCode.Forbidden, prohibited.StatusCode);
        Assert.Contains("error=destination_ip_prohibited", string.Join(",", prohibited.Headers.GetValues("Proxy-Status")));

        using var notConnect = await client.GetAsync("/");
        Assert.Equal(HttpStatusCode.MethodNotAllowed, notConnect.StatusCode);
    }

    [Fact]
    public async Task Http2_without_the_token_gets_407()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o =>
        {
            var file = Path.Combine(Path.GetDirectoryName(o.KeyFile)!, "tokens");
            File.WriteAllText(file, "tok-en\n");
            return o with { TokenFile = file };
        });
        using var client = relay.CreateHttp2Client();
        using var missing = await client.SendAsync(ConnectHarness.ExtendedConnect("origin.test", echo.Port));
        Assert.Equal(HttpStatusCode.ProxyAuthenticationRequired, missing.StatusCode);
        Assert.Contains("Bearer", missing.Headers.ProxyAuthenticate.ToString());

        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        request.Headers.ProxyAuthorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "tok-en");
        using var ok = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
    }

    [Fact]
    public async Task Mutual_tls_admits_only_pinned_clients()
    {
        await using var echo = new EchoServer();
        using var allowed = NodeIdentity.Create();
        using var stranger = NodeIdentity.Create();
        await using var relay = await ConnectHarness.StartAsync(o => o with { ClientIds = [allowed.NodeId.ToString()] });

        async Task<HttpStatusCode> TryAsync(NodeIdentity? identity)
        {
            using var client = relay.CreateHttp2Client(handler =>
            {
                if (identity is not null)
                {
                    handler.SslOptions.ClientCertificates = [identity.Certificate];
                }
            });
            using var response = await client.SendAsync(ConnectHarness.ExtendedConnect("origin.test", echo.Port), HttpCompletionOption.ResponseHeadersRead);
            return response.StatusCode;
        }

        Assert.Equal(HttpStatusCode.OK, await TryAsync(allowed));
        // Under TLS 1.3 the client learns of the refusal after its side of the handshake: as a
        // failed request or as a connection that ended before HTTP/2 started.
        foreach (var refused in new[] { stranger, null })
        {
            var error = await Assert.ThrowsAnyAsync<Exception>(() => TryAsync(refused));
            Assert.True(error is HttpRequestException or IOException, error.ToString());
        }
        // Counted as the key's refusal, not as a broken handshake: an operator tells a client to list from broken TLS.
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/client_id_not_allowed") == 2);
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/tls_handshake_failed"));

        // A handshake that breaks before any key is looked at stays a broken handshake.
        using (var broken = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp))
        {
            await broken.ConnectAsync(System.Net.IPAddress.Loopback, relay.TlsPort);
            await broken.SendAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5 });
            broken.Shutdown(System.Net.Sockets.SocketShutdown.Send);
            await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/tls_handshake_failed") == 1);
        }
        Assert.Equal(2, relay.Counter("passage.relay.connections.refused/client_id_not_allowed"));
    }

    [Fact]
    public async Task A_silent_client_is_cut_at_the_tls_handshake_timeout()
    {
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { HandshakeTimeout = TimeSpan.FromMilliseconds(300) });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        Assert.True(await Loopback.IsClosedByPeerAsync(socket));
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/tls_handshake_timeout") == 1);
    }

    [Fact]
    public async Task Plain_http_sent_to_the_tls_listener_is_told_so_in_http_at_once()
    {
        // A handshake timeout longer than the test's guards: an answer can only come from the first bytes.
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { HandshakeTimeout = TimeSpan.FromMinutes(10) });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        // Less than a TLS record header, so that nothing a TLS stack reads could end it.
        await Loopback.SendAllAsync(socket, "CON"u8.ToArray());

        var answer = System.Text.Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(socket));
        Assert.StartsWith("HTTP/1.1 400 Bad Request\r\n", answer);
        Assert.Contains("Proxy-Status: passage; error=http_request_error; details=\"plain HTTP sent to the TLS listener: use an https:// proxy URL\"", answer);
        Assert.EndsWith("\r\n\r\n", answer);
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/not_tls") == 1);
    }

    /// <summary>
    /// A relay that serves HTTP/2 only answers an HTTP/1.1 CONNECT over TLS as it does on the plain listener: 505 with a
    /// Proxy-Status, whether the client offered ALPN http/1.1 (once refused with a no_application_protocol alert) or no
    /// ALPN at all (once relayed as if HTTP/1.1 were served).
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Http2_only_answers_an_http1_connect_over_tls_with_505(bool offersHttp11)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o => o with { MinHttpVersion = 2 });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "relay.test",
            ApplicationProtocols = offersHttp11 ? [SslApplicationProtocol.Http11] : null,
            RemoteCertificateValidationCallback = (_, _, _, _) => true,
        });
        var target = $"origin.test:{echo.Port}";
        await tls.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"));

        using var answer = new MemoryStream();
        await tls.CopyToAsync(answer).WaitAsync(Timeouts.Default);
        var text = System.Text.Encoding.ASCII.GetString(answer.ToArray());
        Assert.StartsWith("HTTP/1.1 505 HTTP Version Not Supported\r\n", text);
        Assert.Contains("Proxy-Status: passage; error=http_protocol_error; details=\"this relay serves HTTP/2 only\"", text);
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/http_version_not_supported") == 1);
        Assert.Equal(0, relay.Total("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task Bytes_that_are_neither_tls_nor_http_get_a_fatal_alert_at_once()
    {
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { HandshakeTimeout = TimeSpan.FromMinutes(10) });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        await Loopback.SendAllAsync(socket, new byte[] { 0, 1, 2 });

        // handshake_failure (40), as pass-through answers a first byte that is not TLS.
        Assert.Equal(new byte[] { 21, 3, 3, 0, 2, 2, 40 }, await Loopback.ReadToEndAsync(socket));
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/not_tls") == 1);
        Assert.Equal(0, relay.Counter("passage.relay.connections.refused/tls_handshake_timeout"));
    }

    [Fact]
    public async Task Stopping_waits_for_an_http1_tunnel_over_tls_and_its_end_closes_the_tls_connection()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { DrainTimeout = TimeSpan.FromMilliseconds(300) });
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort)).WaitAsync(Timeouts.Default);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            RemoteCertificateValidationCallback = CertificatePin.CreateValidationCallback(relay.Relay.NodeId),
        }).WaitAsync(Timeouts.Default);
        Assert.Equal(SslApplicationProtocol.Http11, tls.NegotiatedApplicationProtocol);
        await tls.WriteAsync(System.Text.Encoding.ASCII.GetBytes($"CONNECT origin.test:{echo.Port} HTTP/1.1\r\nHost: origin.test:{echo.Port}\r\n\r\n"));
        var head = new System.Text.StringBuilder();
        var one = new byte[1];
        while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && await tls.ReadAsync(one).AsTask().WaitAsync(Timeouts.Default) == 1)
        {
            head.Append((char)one[0]);
        }
        Assert.StartsWith("HTTP/1.1 200", head.ToString());
        await tls.WriteAsync("ping"u8.ToArray());
        var pong = new byte[4];
        await tls.ReadExactlyAsync(pong).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("ping"u8.ToArray(), pong);
        await relay.StopWithOneTunnelOpenAsync(socket);
    }

    [Fact]
    public async Task Stopping_sends_idle_http2_connections_away_without_waiting_for_the_drain_deadline()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { DrainTimeout = TimeSpan.FromMinutes(5) });
        using var client = relay.CreateHttp2Client();
        using (var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port))
        using (var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead))
        await using (var tunnel = await response.Content.ReadAsStreamAsync())
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        // The HTTP/2 connection stays open and idle in the client's pool; stopping must not wait
        // five minutes for it (the bound below is the test's own timeout, not a performance figure).
        await relay.Relay.StopAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }
    // The pump gives its reads and writes no token: stopping a tunnel (idle timeout, drain deadline) tears its
    // two ends down, which must end what is pending on them. These cover the two kinds of TLS-side end the relay
    // has: a TLS stream of its own (HTTP/1.1 CONNECT) and a Kestrel HTTP/2 stream (extended CONNECT).

    [Fact]
    public async Task An_idle_http1_tunnel_over_tls_is_closed_at_the_idle_timeout()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { IdleTimeout = TimeSpan.FromMilliseconds(300) });
        var (tls, socket) = await OpenHttp1TunnelOverTlsAsync(relay, echo.Port);
        using var _ = socket;
        await using var __ = tls;

        // The relay resets the connection (an end it gives up on is aborted, not closed).
        await Assert.ThrowsAsync<IOException>(() => tls.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.closed/idle_timeout") == 1);
        Assert.Equal(0, relay.Relay.OpenTunnels);
    }

    [Fact]
    public async Task An_idle_http1_tunnel_over_tls_is_closed_at_the_drain_deadline()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { DrainTimeout = TimeSpan.FromMilliseconds(200) });
        var (tls, socket) = await OpenHttp1TunnelOverTlsAsync(relay, echo.Port);
        using var _ = socket;
        await using var __ = tls;

        await relay.Relay.StopAsync().WaitAsync(Timeouts.Default);
        Assert.True(await Loopback.IsClosedByPeerAsync(socket));
        Assert.Equal(0, relay.Relay.OpenTunnels);
    }

    [Fact]
    public async Task An_http2_tunnel_still_open_at_the_drain_deadline_is_closed_and_counted_as_shut_down()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { DrainTimeout = TimeSpan.FromMilliseconds(200) });
        using var client = relay.CreateHttp2Client();
        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var tunnel = await response.Content.ReadAsStreamAsync();

        await relay.Relay.StopAsync().WaitAsync(Timeouts.Default);
        // Waited for by its close, not by the open gauge: the client has its 200 a moment before the relay counts
        // the tunnel open, and under load the gauge was once seen at 0 before then.
        // The tunnel, and its connection.
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.closed/shutdown") == 2);
        Assert.Equal(1, relay.Total("passage.relay.connections.closed", "connect_h2"));
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.tunnels.open") == 0);
        Assert.Equal(0, relay.Counter("passage.relay.connections.closed/client_failed"));
    }

    /// <summary>
    /// The relay's drain deadline, on its clock, is what closes an HTTP/2 tunnel at a stop, and the tunnel is counted shut
    /// down. Kestrel's own grace, on the wall clock, used to run out at the same moment and cut the connection first,
    /// unannounced: the tunnel's stream then failed as the client's side before its request's cancellation was seen,
    /// and was now and then counted client_failed.
    /// </summary>
    [Fact]
    public Task An_http2_tunnel_is_closed_by_the_drain_deadline_on_the_relay_s_clock_and_counted_shut_down() =>
        // A second of the wall clock, five times the drain timeout, and none of the relay's: the tunnel still works.
        AssertHttp2TunnelLastsTheDrain(TimeSpan.FromMilliseconds(200), wallClock: TimeSpan.FromSeconds(1));

    /// <summary>
    /// A drain timeout longer than the 30 s that Kestrel's host gives a stop of its own accord (HostOptions.ShutdownTimeout)
    /// holds for HTTP/2 tunnels too: the host's default used to cut them at 30 s of the wall clock, whatever the drain.
    /// </summary>
    [Fact]
    public Task An_http2_tunnel_outlasts_kestrel_s_default_shutdown_timeout_while_the_drain_runs() =>
        // Past the host's 30 s of the wall clock, and none of the relay's: the tunnel still works.
        AssertHttp2TunnelLastsTheDrain(TimeSpan.FromMinutes(1), wallClock: TimeSpan.FromSeconds(32));

    /// <summary>
    /// Stops a relay (drain <paramref name="drain"/>, on a manual clock; shorter than the idle timeout, 5 min, which would
    /// end the tunnel at the same tick otherwise) with an HTTP/2 tunnel open: after
    /// <paramref name="wallClock"/> of the wall clock and none of the relay's the tunnel still echoes; at the relay's drain
    /// deadline it is closed, counted shut down.
    /// </summary>
    private static async Task AssertHttp2TunnelLastsTheDrain(TimeSpan drain, TimeSpan wallClock)
    {
        var clock = new ManualTimeProvider();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { DrainTimeout = drain }, time: clock);
        using var client = relay.CreateHttp2Client();
        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var tunnel = await response.Content.ReadAsStreamAsync();
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.tunnels.open") == 1);

        var stopping = relay.Relay.StopAsync();
        await Task.Delay(wallClock);
        var buffer = new byte[4];
        await tunnel.WriteAsync("ping"u8.ToArray());
        await tunnel.FlushAsync();
        await tunnel.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(0, relay.Total("passage.relay.connections.closed"));

        clock.Advance(drain);
        await stopping.WaitAsync(Timeouts.Default);
        // The tunnel, and its connection (counted before the stop completes).
        await Timeouts.WaitUntilAsync(() => relay.Total("passage.relay.connections.closed") == 2);
        Assert.Equal(2, relay.Counter("passage.relay.connections.closed/shutdown"));
        Assert.Equal(1, relay.Total("passage.relay.connections.closed", "connect_h2"));
    }

    [Fact]
    public async Task An_idle_http2_tunnel_is_closed_at_the_idle_timeout()
    {
        await using var echo = new EchoServer();
        // Long enough that a loaded machine does not stall the first echo past it (300 ms did, once in a full run).
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { IdleTimeout = TimeSpan.FromSeconds(1) });
        using var client = relay.CreateHttp2Client();
        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await using var tunnel = await response.Content.ReadAsStreamAsync();
        await tunnel.WriteAsync("ping"u8.ToArray());
        await tunnel.FlushAsync();
        var buffer = new byte[4];
        await tunnel.ReadExactlyAsync(buffer).AsTask().WaitAsync(Timeouts.Default);

        // The relay resets the stream: the read ends one way or the other, but it ends.
        try
        {
            Assert.Equal(0, await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
        }
        catch (Exception e) when (e is IOException or HttpRequestException)
        {
        }
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.closed/idle_timeout") == 1);
        Assert.Equal(0, relay.Relay.OpenTunnels);
    }

    /// <summary>HTTP/1.1 CONNECT inside TLS to the relay (ALPN http/1.1), one echo round trip through the tunnel.</summary>
    private static async Task<(SslStream Tls, Socket Socket)> OpenHttp1TunnelOverTlsAsync(ConnectHarness relay, int echoPort)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        var tls = await ConnectHarness.TlsToRelayAsync(new NetworkStream(socket, ownsSocket: false));
        await ConnectHarness.ConnectThroughAsync(tls, $"origin.test:{echoPort}");
        await tls.WriteAsync("ping"u8.ToArray());
        var back = new byte[4];
        await tls.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("ping"u8.ToArray(), back);
        return (tls, socket);
    }
}
