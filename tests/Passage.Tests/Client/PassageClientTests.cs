using System.Net;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client;

/// <summary>The library API: streams and HttpClient through a relay.</summary>
public sealed class PassageClientTests
{
    private static async Task<PassageClient> StartClientAsync(params PeerAddress[] relays)
    {
        var client = new PassageClient(new PassageClientOptions { Relays = relays, ProbeInterval = TimeSpan.FromMilliseconds(200) });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        return client;
    }

    [Fact]
    public async Task ConnectAsync_gives_a_stream_to_the_destination_through_the_relay()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        await using var client = await StartClientAsync(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort));

        await using var stream = await client.ConnectAsync("origin.test", echo.Port);
        var data = RandomNumberGenerator.GetBytes(300_000);
        var reading = Task.Run(async () =>
        {
            var back = new byte[data.Length];
            await stream.ReadExactlyAsync(back);
            return back;
        });
        await stream.WriteAsync(data);
        Assert.Equal(data, await reading.WaitAsync(Timeouts.Default));
        Assert.Equal(1, relay.Counter("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task HttpClient_through_the_handler_reaches_an_https_origin_with_tls_end_to_end()
    {
        await using var origin = await TestOrigin.StartAsync("origin.test");
        await using var relay = await ConnectHarness.StartAsync();
        await using var client = await StartClientAsync(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort));
        using var handler = client.CreateHttpHandler();
        handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate?.GetCertHashString() == origin.Certificate.GetCertHashString();
        using var http = new HttpClient(handler) { Timeout = Timeouts.Default };

        var body = await http.GetStringAsync($"https://origin.test:{origin.Port}/");
        Assert.StartsWith("origin origin.test saw remote=", body);
    }

    /// <summary>
    /// A relay that takes a tunnel request and never answers (here: its connect timeout is longer than anyone waits,
    /// toward a destination that drops SYNs) fails the attempt at the answer timeout, as a relay that is down. Over the
    /// connection the client holds already, the answer timeout alone: the wait was connect + answer timeout whatever (here
    /// ten minutes and a half), said as "within 500ms".
    /// </summary>
    [Fact]
    public async Task A_relay_that_does_not_answer_a_tunnel_request_fails_it_at_the_answer_timeout()
    {
        using var blackhole = new Blackhole();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { ConnectTimeout = TimeSpan.FromMinutes(10) });
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)],
            ConnectTimeout = TimeSpan.FromMinutes(10),
            AnswerTimeout = TimeSpan.FromMilliseconds(500),
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", blackhole.Port).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        Assert.Contains("did not answer within 500ms", error.Message);
    }

    /// <summary>
    /// A tunnel request that comes while the first one's connection is still in its TLS handshake waits for that setup as
    /// the first does: the connection is not up yet. Counted as open from its TCP connection, it was given the answer
    /// timeout alone for the setup and the answer. Which limit a request was given is what its failure names (here the relay
    /// never answers: its connect timeout is longer than anyone waits, toward a destination that drops SYNs).
    /// </summary>
    [Fact]
    public async Task A_tunnel_request_made_while_the_connection_is_set_up_waits_for_the_setup_too()
    {
        using var blackhole = new Blackhole();
        await using var relay = await ConnectHarness.StartAsync(limits: new Passage.Relay.RelayLimits { ConnectTimeout = TimeSpan.FromMinutes(10) });
        // Holds the relay's part of the handshake until both requests are made.
        await using var tap = new TcpTap(new IPEndPoint(IPAddress.Loopback, relay.TlsPort), held: true);
        // The handshake, held, then released, must end within the connect timeout: room for a loaded machine.
        var connectTimeout = TimeSpan.FromSeconds(4);
        var answerTimeout = TimeSpan.FromMilliseconds(300);
        using var link = new RelayLink(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", tap.Port), null, null, connectTimeout, answerTimeout);

        var first = link.OpenAsync("origin.test", blackhole.Port, () => { }, CancellationToken.None);
        // Its ClientHello has come: the connection is made, its handshake under way.
        await Timeouts.WaitUntilAsync(() => tap.FirstBytes.Count > 0);
        var second = link.OpenAsync("origin.test", blackhole.Port, () => { }, CancellationToken.None);
        tap.Release();

        var setupAndAnswer = $"did not answer within {Passage.Configuration.Duration.Format(connectTimeout + answerTimeout)}";
        Assert.Contains(setupAndAnswer, (await first.WaitAsync(Timeouts.Default)).Detail);
        var attempt = await second.WaitAsync(Timeouts.Default);
        Assert.Equal(TunnelFailure.RelayUnavailable, attempt.Failure);
        Assert.Contains(setupAndAnswer, attempt.Detail);
        Assert.Equal(1, tap.Accepted);
    }

    /// <summary>
    /// A tunnel request made over a connection that is up, which takes no more streams (the relay allows one, which the first
    /// tunnel holds): the HTTP client opens a second connection, and the request waits in its queue for that setup. Given
    /// the answer timeout alone for the setup and the answer, it failed a relay that was only slow to reach, and named that
    /// timeout. The second connection's TLS handshake is held until it has begun; the relay never answers the request
    /// (toward a destination that drops SYNs), so that its failure names the limit it was given.
    /// </summary>
    [Fact]
    public async Task A_tunnel_request_that_waits_for_a_second_connection_at_the_relays_stream_limit_waits_for_its_setup_too()
    {
        using var blackhole = new Blackhole();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(
            options => options with { MaxStreamsPerConnection = 1 },
            limits: new Passage.Relay.RelayLimits { ConnectTimeout = TimeSpan.FromMinutes(10) });
        await using var tap = new TcpTap(new IPEndPoint(IPAddress.Loopback, relay.TlsPort));
        // The second connection's setup must begin within the answer timeout (the HTTP client starts it from its thread
        // pool), and its handshake, once released, end within the connect timeout: room for a loaded machine.
        var connectTimeout = TimeSpan.FromSeconds(3);
        var answerTimeout = TimeSpan.FromMilliseconds(1500);
        using var link = new RelayLink(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", tap.Port), null, null, connectTimeout, answerTimeout);
        var first = await link.OpenAsync("origin.test", echo.Port, () => { }, CancellationToken.None).WaitAsync(Timeouts.Default);
        await using var tunnel = first.Stream ?? throw new InvalidOperationException(first.Detail);

        await AssertWaitsForTheSecondSetupAsync(link, tap, blackhole.Port, connectTimeout + answerTimeout);
    }

    /// <summary>
    /// As at the stream limit, a tunnel request made after the relay's GOAWAY (the connection stays for the tunnel it
    /// carries, no new stream goes on it) waits for the new connection's setup.
    /// </summary>
    [Fact]
    public async Task A_tunnel_request_made_after_the_relays_GOAWAY_waits_for_the_new_connections_setup_too()
    {
        using var blackhole = new Blackhole();
        var tunnels = 0;
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            if (Interlocked.Increment(ref tunnels) == 1)
            {
                // Read before the 200: the client knows of it once the first tunnel is open.
                await connection.SendAsync(RawHttp2.GoAwayFrame(stream));
                await connection.SendAsync(HostileConnection.Answer(stream, 200));
            }
            // The next: never answered.
        });
        await using var tap = new TcpTap(new IPEndPoint(IPAddress.Loopback, relay.Address.Port));
        // The second connection's setup must begin within the answer timeout (the HTTP client starts it from its thread
        // pool), and its handshake, once released, end within the connect timeout: room for a loaded machine.
        var connectTimeout = TimeSpan.FromSeconds(3);
        var answerTimeout = TimeSpan.FromMilliseconds(1500);
        using var link = new RelayLink(new PeerAddress(relay.Address.NodeId, "127.0.0.1", tap.Port), null, null, connectTimeout, answerTimeout);
        var first = await link.OpenAsync("origin.test", 443, () => { }, CancellationToken.None).WaitAsync(Timeouts.Default);
        await using var tunnel = first.Stream ?? throw new InvalidOperationException(first.Detail);

        await AssertWaitsForTheSecondSetupAsync(link, tap, blackhole.Port, connectTimeout + answerTimeout);
    }

    /// <summary>
    /// Makes a tunnel request over <paramref name="link"/>, whose connection through <paramref name="tap"/> is up and takes
    /// no new stream, holding the second connection's TLS handshake until it has begun, and another request while it is
    /// held; the relay answers neither: each failure names <paramref name="setupAndAnswer"/>, the limit of a request that
    /// waits for a setup.
    /// </summary>
    private static async Task AssertWaitsForTheSecondSetupAsync(RelayLink link, TcpTap tap, int port, TimeSpan setupAndAnswer)
    {
        tap.Hold();
        var second = link.OpenAsync("origin.test", port, () => { }, CancellationToken.None);
        // Its ClientHello has come: the second connection is made, its handshake under way.
        await Timeouts.WaitUntilAsync(() => tap.FirstBytes.Count == 2);
        var third = link.OpenAsync("origin.test", port, () => { }, CancellationToken.None);
        tap.Release();

        foreach (var attempt in await Task.WhenAll(second, third).WaitAsync(Timeouts.Default))
        {
            Assert.Equal(TunnelFailure.RelayUnavailable, attempt.Failure);
            Assert.Contains($"did not answer within {Passage.Configuration.Duration.Format(setupAndAnswer)}", attempt.Detail);
        }
        Assert.True(tap.Accepted >= 2, $"{tap.Accepted} connections");
    }

    [Fact]
    public async Task A_relay_presenting_another_key_is_refused_with_a_clear_error()
    {
        await using var relay = await ConnectHarness.StartAsync();
        using var impostor = NodeIdentity.Create();
        await using var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(impostor.NodeId, "127.0.0.1", relay.TlsPort)] });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(async () => await client.ConnectAsync("origin.test", 443));
        Assert.Equal(TunnelFailure.PinMismatch, error.Failure);
        Assert.Contains(impostor.NodeId.ToString(), error.Message);
        Assert.Equal(0, relay.Counter("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task Destination_refusals_come_back_as_failures_and_are_not_retried_elsewhere()
    {
        await using var relay = await ConnectHarness.StartAsync(o => o with { Allow = ["origin.test:443"] });
        await using var client = await StartClientAsync(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort));
        var error = await Assert.ThrowsAsync<PassageTunnelException>(async () => await client.ConnectAsync("other.test", 443));
        Assert.Equal(TunnelFailure.DestinationDenied, error.Failure);
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A relay probe that the client's disposing interrupts (here the start's, in a TLS handshake the relay never answers)
    /// ends quietly: the start returns, and the relay is not reported down for it. It used to throw the
    /// <see cref="ObjectDisposedException"/> of the relay's closed connections out of <see cref="PassageClient.StartAsync"/>.
    /// A start after the disposal is refused as a tunnel is.
    /// </summary>
    [Fact]
    public async Task A_relay_probe_the_disposal_interrupts_ends_quietly()
    {
        using var identity = NodeIdentity.Create();
        using var silent = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        silent.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        silent.Listen(4);
        var log = new RecordingLogger();
        using var loggerFactory = log.Factory();
        var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)silent.LocalEndPoint!).Port)],
            ConnectTimeout = TimeSpan.FromHours(1),
        }, loggerFactory, new ManualTimeProvider());
        var starting = client.StartAsync();
        using var probe = await silent.AcceptAsync().WaitAsync(Timeouts.Default);

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await starting.WaitAsync(Timeouts.Default);
        Assert.Empty(log.Named("RelayDown"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.StartAsync().WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// A relay taken for down by a failed tunnel setup is said to be down, as one a probe finds down is: the log said
    /// that it failed a setup, and later that it was up, with no line between saying it had been taken for down. Once:
    /// a relay already down is not said down again. (The clock stands still: no probe runs.)
    /// </summary>
    [Fact]
    public async Task A_relay_a_failed_setup_takes_down_is_said_down_once()
    {
        var relay = await ConnectHarness.StartAsync();
        var log = new RecordingLogger();
        using var loggerFactory = log.Factory();
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)],
        }, loggerFactory, new ManualTimeProvider());
        await client.StartAsync().WaitAsync(Timeouts.Default);
        Assert.True(client.Status.Single().IsUp);
        await relay.DisposeAsync();

        for (var i = 0; i < 2; i++)
        {
            await Assert.ThrowsAsync<PassageTunnelException>(async () => await client.ConnectAsync("origin.test", 443));
        }
        Assert.False(client.Status.Single().IsUp);
        Assert.NotEmpty(log.Named("RelayFailed"));
        var down = Assert.Single(log.Named("RelayDown"));
        Assert.Equal(LogLevel.Warning, down.Level);
        Assert.True(log.Entries.ToList().FindIndex(e => e.Name == "RelayFailed") < log.Entries.ToList().FindIndex(e => e.Name == "RelayDown"));
    }

    [Fact]
    public async Task Cancellation_stops_a_tunnel_setup()
    {
        // A destination that never answers: the relay waits for its connect timeout.
        using var blackhole = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        blackhole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        blackhole.Listen(0);
        var fillers = Enumerable.Range(0, 4).Select(_ => new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp)).ToList();
        fillers.ForEach(f => _ = f.ConnectAsync(blackhole.LocalEndPoint!));
        try
        {
            await using var relay = await ConnectHarness.StartAsync();
            await using var client = await StartClientAsync(new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort));
            using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await client.ConnectAsync("origin.test", ((IPEndPoint)blackhole.LocalEndPoint!).Port, cts.Token));
            // The relay stays usable for the next tunnel.
            Assert.True(client.Status.Single().IsUp);
        }
        finally
        {
            fillers.ForEach(f => f.Dispose());
        }
    }
}
