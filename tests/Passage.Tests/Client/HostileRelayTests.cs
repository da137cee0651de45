using Passage.Client;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client;

/// <summary>
/// Relays that the client's pin accepts and that then break HTTP/2 or answer tunnel requests wrongly: what the
/// application gets, whether the relay is taken for down, and what the client holds afterwards.
/// </summary>
public sealed class HostileRelayTests
{
    private static Task<PassageClient> StartClientAsync(params HostileRelay[] relays) => StartClientAsync(null, relays);

    /// <summary>With a <paramref name="time"/> that does not move, the probe loop never runs: a relay taken for down stays so.</summary>
    internal static async Task<PassageClient> StartClientAsync(TimeProvider? time, params HostileRelay[] relays)
    {
        var client = new PassageClient(new PassageClientOptions
        {
            Relays = relays.Select(r => r.Address).ToArray(),
            // Only the tests' own attempts and the start's probe: the probe loop measures no healthy relay meanwhile.
            ProbeInterval = TimeSpan.FromHours(1),
        }, timeProvider: time);
        await client.StartAsync().WaitAsync(Timeouts.Default);
        return client;
    }

    private static string Connections(HostileRelay relay) =>
        string.Join(" ", relay.Connections.Select(c => $"[tunnels {c.Tunnels}, closed {c.Closed.IsCompleted}]"));

    /// <summary>
    /// A tunnel script for relays that share it: the n-th tunnel request any of them sees is answered with
    /// <paramref name="answers"/>[n] (the frames for its stream); every later one 200, its bytes echoed.
    /// </summary>
    internal static Func<HostileConnection, int, Task> AnsweredInTurn(params Func<int, byte[]>[] answers)
    {
        var requests = 0;
        return async (connection, stream) =>
        {
            var n = Interlocked.Increment(ref requests) - 1;
            if (n < answers.Length)
            {
                await connection.SendAsync(answers[n](stream));
                return;
            }
            connection.Echo(stream);
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
        };
    }

    /// <summary>A refusal as a relay sends it: <c>407</c>, or a status and the error type of its Proxy-Status (<c>502 connection_refused</c>).</summary>
    private static Func<int, byte[]> Refusal(string answer)
    {
        var parts = answer.Split(' ');
        var status = int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture);
        (string, string)[] fields = status == 407
            ? [("proxy-authenticate", "Bearer"), ("proxy-status", "passage; error=http_request_denied")]
            : parts.Length > 1 ? [("proxy-status", $"passage; error={parts[1]}")] : [];
        return stream => HostileConnection.Answer(stream, status, endStream: true, fields);
    }

    /// <summary>Writes 1000 bytes at a time to <paramref name="tunnel"/> until a write fails.</summary>
    private static async Task WriteUntilItFailsAsync(Stream tunnel)
    {
        while (true)
        {
            await tunnel.WriteAsync(new byte[1000]);
        }
    }

    /// <summary>A relay breaking a tunnel it answered: by a stream reset with an error code, a GOAWAY, or its TCP connection's end.</summary>
    private static async Task BreakAsync(HostileConnection connection, int stream, string how)
    {
        switch (how)
        {
            case "RST_STREAM CONNECT_ERROR":
                await connection.SendAsync(RawHttp2.Reset(stream, RawHttp2.ConnectError));
                break;
            case "RST_STREAM INTERNAL_ERROR":
                await connection.SendAsync(RawHttp2.Reset(stream, 0x2));
                break;
            case "RST_STREAM CANCEL":
                await connection.SendAsync(RawHttp2.Reset(stream, RawHttp2.Cancel));
                break;
            case "GOAWAY without the stream":
                await connection.SendAsync(RawHttp2.GoAwayFrame(0));
                break;
            case "TCP closed between frames":
                connection.Shutdown();
                break;
            case "TCP closed in a frame":
                await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, new byte[16_384]).AsMemory(0, 1000));
                connection.Shutdown();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(how), how, null);
        }
    }

    /// <summary>The DATA bytes the client has sent on <paramref name="stream"/> that the relay has read.</summary>
    private static int Sent(HostileConnection connection, int stream) =>
        connection.Received.Where(f => f.Type == RawHttp2.Data && f.Stream == stream).Sum(f => f.Payload.Length);

    /// <summary>Sends <paramref name="count"/> relay bytes on <paramref name="stream"/>, in DATA frames of HTTP/2's default maximum size.</summary>
    private static async Task SendBulkAsync(HostileConnection connection, int stream, int count)
    {
        for (var at = 0; at < count; at += 16_384)
        {
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, new byte[Math.Min(16_384, count - at)]));
        }
    }

    /// <summary>Sends a PING and waits for the client's acknowledgement: the client has taken in every frame sent before it.</summary>
    private static async Task PingedAsync(HostileConnection connection)
    {
        byte[] payload = [0, 0, 0, 0, 0, 0, 0, 1];
        await connection.SendAsync(RawHttp2.Frame(RawHttp2.Ping, 0, 0, payload));
        await Timeouts.WaitUntilAsync(() => connection.Received.Any(f => f.Type == RawHttp2.Ping && (f.Flags & RawHttp2.Ack) != 0 && f.Payload.AsSpan().SequenceEqual(payload)));
    }

    /// <summary>Bytes written to <paramref name="tunnel"/> come back (the relay echoes them).</summary>
    internal static async Task AssertEchoesAsync(Stream tunnel)
    {
        await tunnel.WriteAsync("hi"u8.ToArray());
        var back = new byte[2];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("hi"u8.ToArray(), back);
    }

    /// <summary>
    /// A relay whose SETTINGS allow no stream at all: the HTTP client keeps each such connection (the relay may raise
    /// the limit later) and opens another beside it for the next request, so every failed attempt, and every probe of
    /// the relay while it is down, left sockets open for good (13 after five attempts; a probe every 30 s adds more).
    /// </summary>
    [Fact]
    public async Task A_relay_that_allows_no_stream_fails_the_attempt_and_keeps_none_of_its_connections_open()
    {
        await using var relay = HostileRelay.Start((_, _) => Task.CompletedTask, HostileRelay.Settings((RawHttp2.MaxConcurrentStreams, 0)));
        await using var client = await StartClientAsync(relay);

        for (var i = 0; i < 3; i++)
        {
            var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        }
        Assert.False(client.Status.Single().IsUp);
        Assert.Equal(0, relay.Tunnels);
        // Every connection those attempts opened is closed (the probe loop may open more meanwhile: not these).
        var opened = relay.Connections;
        Assert.True(opened.Count >= 2, Connections(relay));
        await Timeouts.WaitUntilAsync(() => opened.All(c => c.Closed.IsCompleted), () => Connections(relay));
    }

    /// <summary>Dropping a failed relay's connections does not cut the tunnels they carry: those end when they end.</summary>
    [Fact]
    public async Task A_tunnel_open_on_a_relay_that_then_fails_keeps_working()
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            if (connection.Tunnels == 1)
            {
                // The first tunnel: answered, and its bytes echoed.
                connection.Echo(stream);
                await connection.SendAsync(HostileConnection.Answer(stream, 200));
            }
            // Every later request: never answered.
        });
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [relay.Address],
            ProbeInterval = TimeSpan.FromHours(1),
            AnswerTimeout = TimeSpan.FromMilliseconds(200),
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Contains("did not answer", error.Message);
        Assert.False(client.Status.Single().IsUp);

        await tunnel.WriteAsync("still here"u8.ToArray());
        var back = new byte[10];
        await tunnel.ReadExactlyAsync(back).AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("still here"u8.ToArray(), back);
    }

    /// <summary>
    /// Dropping a failed relay's connections does not cut a tunnel request that was waiting for its answer on them
    /// either: it counts from before it is sent, as a tunnel does. (Counted only from its 200, it was cut when another
    /// attempt failed the relay meanwhile: RelayUnavailable, "An error occurred while sending the request".)
    /// </summary>
    [Fact]
    public async Task A_tunnel_request_waiting_for_its_answer_survives_another_attempt_failing_the_relay()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var requests = 0;
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            if (Interlocked.Increment(ref requests) == 1)
            {
                // The first tunnel request: answered 200 once the second has failed the relay.
                await release.Task;
                connection.Echo(stream);
                await connection.SendAsync(HostileConnection.Answer(stream, 200));
                return;
            }
            await connection.SendAsync(HostileConnection.Answer(stream, 404, endStream: true));
        });
        await using var client = await StartClientAsync(relay);

        var first = client.ConnectAsync("origin.test", 443).AsTask();
        await Timeouts.WaitUntilAsync(() => relay.Tunnels == 1, () => Connections(relay));
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, error.Failure);
        Assert.False(client.Status.Single().IsUp);

        release.SetResult();
        await using var tunnel = await first.WaitAsync(Timeouts.Default);
        await AssertEchoesAsync(tunnel);
    }

    /// <summary>
    /// Disposing the client closes every relay connection it opened and ends the tunnel requests still waiting on them:
    /// here one waiting for its answer on the connection that another attempt's failure dropped (kept open for it
    /// alone). That connection used to stay open after the client was disposed, as long as the request waited (up to
    /// the connect and answer timeouts), and the request went on: a tunnel could come out of a disposed client.
    /// </summary>
    [Fact]
    public async Task Disposing_the_client_ends_a_tunnel_request_waiting_for_its_answer_and_closes_its_connection()
    {
        var requests = 0;
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            // The first tunnel request: never answered.
            if (Interlocked.Increment(ref requests) > 1)
            {
                await connection.SendAsync(HostileConnection.Answer(stream, 404, endStream: true));
            }
        });
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [relay.Address],
            ProbeInterval = TimeSpan.FromHours(1),
            AnswerTimeout = Timeout.InfiniteTimeSpan,
        }, timeProvider: new ManualTimeProvider());
        await client.StartAsync().WaitAsync(Timeouts.Default);
        var waiting = client.ConnectAsync("origin.test", 443).AsTask();
        await Timeouts.WaitUntilAsync(() => relay.Tunnels == 1, () => Connections(relay));
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, error.Failure);

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(Timeouts.Default));
        await Timeouts.WaitUntilAsync(() => relay.Connections.All(c => c.Closed.IsCompleted), () => Connections(relay));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// The probe loop measures a healthy relay every <see cref="PassageClientOptions.ProbeInterval"/> from the start's own
    /// probe: its first pass took the time since the clock's zero (the machine's boot) as the time since the last probe,
    /// and measured every relay again 100 ms after the start, whatever the interval.
    /// </summary>
    [Fact]
    public async Task The_probe_loop_waits_its_interval_after_the_start_before_measuring_a_healthy_relay_again()
    {
        var clock = new ManualTimeProvider();
        // A machine up for a day.
        clock.Advance(TimeSpan.FromDays(1));
        await using var relay = HostileRelay.Start(AnsweredInTurn());
        await using var client = await StartClientAsync(clock, relay);
        Assert.Equal(1, relay.Probes);

        // A few passes of the loop (one every 100 ms), each seen through: the loop waits for its next pass again.
        for (var pass = 0; pass < 3; pass++)
        {
            await Timeouts.WaitUntilAsync(() => clock.ArmedTimers == 1);
            clock.Advance(TimeSpan.FromMilliseconds(100));
        }
        await Timeouts.WaitUntilAsync(() => clock.ArmedTimers == 1);
        Assert.Equal(1, relay.Probes);

        // At the interval (an hour here), it measures again.
        clock.Advance(TimeSpan.FromHours(1));
        await Timeouts.WaitUntilAsync(() => relay.Probes == 2);
    }

    /// <summary>Disposing the client ends the tunnels it opened: their relay connection is closed, not kept for them.</summary>
    [Fact]
    public async Task Disposing_the_client_ends_its_open_tunnels()
    {
        await using var relay = HostileRelay.Start(AnsweredInTurn());
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await AssertEchoesAsync(tunnel);

        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Timeouts.WaitUntilAsync(() => relay.Connections.All(c => c.Closed.IsCompleted), () => Connections(relay));
        await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// An answer that says nothing of the destination is the relay's failing: the tunnel goes to the next relay and
    /// this one is taken for down. Such answers used to end the attempt, relay kept up and first in line, so one
    /// misconfigured relay failed every tunnel while a healthy one stood next to it. A 407 is no fault of the relay's,
    /// and yet another relay may take the tunnel (relays run by different operators, a token rotated at one): the
    /// tunnel goes to the next relay too, but the refusing one stays up. A 407 used to end the search: the application
    /// was refused while a relay that would take it stood next.
    /// </summary>
    [Theory]
    [InlineData("404", false)]
    [InlineData("500", false)]
    [InlineData("500 proxy_internal_error", false)]
    [InlineData("301", false)]
    [InlineData("407", true)]
    public async Task A_refusal_another_relay_may_not_give_sends_the_tunnel_to_the_next_relay(string answer, bool staysUp)
    {
        var serve = AnsweredInTurn(Refusal(answer));
        await using var first = HostileRelay.Start(serve);
        await using var second = HostileRelay.Start(serve);
        await using var client = await StartClientAsync(first, second);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await AssertEchoesAsync(tunnel);
        Assert.Equal(1, first.Tunnels);
        Assert.Equal(1, second.Tunnels);
        // The one asked first (it got the answer) is down unless it refused only this client; the other is up.
        Assert.Equal(staysUp ? 2 : 1, client.Status.Count(r => r.IsUp));
    }

    /// <summary>
    /// A relay that refuses this client's credentials goes behind the relays that take them, for a while: it stays up, but
    /// each tunnel no longer asks it first (a round trip more and a warning each time, when its token is wrong for good).
    /// The refusing relay is the nearer one here (the other answers probes late), so that it would come first otherwise.
    /// </summary>
    [Fact]
    public async Task A_relay_that_answered_407_is_asked_after_the_others_for_a_while()
    {
        await using var refusing = HostileRelay.Start((connection, stream) => connection.SendAsync(Refusal("407")(stream)));
        await using var taking = HostileRelay.Start(AnsweredInTurn(), probeDelay: TimeSpan.FromMilliseconds(500));
        await using var client = await StartClientAsync(taking, refusing);
        Assert.Equal(refusing.Address.ToString(), client.Status[0].Relay);

        for (var i = 0; i < 3; i++)
        {
            await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
            await AssertEchoesAsync(tunnel);
        }
        Assert.Equal(1, refusing.Tunnels);
        Assert.Equal(3, taking.Tunnels);
        Assert.All(client.Status, r => Assert.True(r.IsUp));
        Assert.Equal(refusing.Address.ToString(), client.Status[1].Relay);
    }

    /// <summary>
    /// Tunnels refused together are one refusal: the relay goes behind the others for 30 s, not for 30 s doubled once per
    /// tunnel. Each 407 used to double the time, so the three tunnels an application opens at once put a relay whose
    /// token was refused for a moment behind the others for 2 min (and six for 10 min) at its first refusal.
    /// </summary>
    /// <remarks>
    /// Relays that are up and not refusing go by their measured round trip, which the test cannot set: the taking relay
    /// answers tunnels as late as probes, so that the refusing one stays the nearer (each tunnel it opened used to bring
    /// its average down from its probe's to a few milliseconds, below a refusing relay's first probe on a loaded
    /// machine: 448 against 744 ms). The last check asks for the order of round trips alone, which holds whichever is
    /// nearer, and which a relay still refusing breaks when it is the nearer, as it is but on a machine that slow.
    /// </remarks>
    [Fact]
    public async Task Tunnels_a_relay_refuses_together_put_it_behind_the_others_for_the_first_period_only()
    {
        var clock = new ManualTimeProvider();
        var asked = 0;
        var allAsked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var refusing = HostileRelay.Start(async (connection, stream) =>
        {
            // Each tunnel asks before any is refused, as those an application opens at once do.
            if (Interlocked.Increment(ref asked) == 3)
            {
                allAsked.SetResult();
            }
            await allAsked.Task;
            await connection.SendAsync(Refusal("407")(stream));
        });
        var late = TimeSpan.FromMilliseconds(500);
        var answerLate = AnsweredInTurn();
        await using var taking = HostileRelay.Start(
            async (connection, stream) =>
            {
                await Task.Delay(late);
                await answerLate(connection, stream);
            },
            probeDelay: late);
        await using var client = await StartClientAsync(clock, taking, refusing);
        Assert.Equal(refusing.Address.ToString(), client.Status[0].Relay);

        var tunnels = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default)));
        foreach (var tunnel in tunnels)
        {
            await AssertEchoesAsync(tunnel);
            await tunnel.DisposeAsync();
        }
        Assert.Equal(3, refusing.Tunnels);
        Assert.Equal(refusing.Address.ToString(), client.Status[1].Relay);

        clock.Advance(TimeSpan.FromSeconds(30));
        var status = client.Status;
        Assert.Equal(status.OrderBy(r => r.RttMilliseconds).Select(r => r.Relay), status.Select(r => r.Relay));
    }

    /// <summary>
    /// A 2xx other than 200 opens the tunnel too (RFC 9110 §9.3.6, RFC 9220), but the .NET 10 HTTP/2 client makes the
    /// stream of an extended CONNECT writable only after a 200 (otherwise it hands out a read-only stream: "The stream
    /// does not support writing"). Such a relay cannot carry this client's tunnels over HTTP/2: the attempt goes to the
    /// next relay, with the reason said, and the stream it opened is reset, not left to hold a connection to the
    /// destination open at the relay.
    /// </summary>
    [Theory]
    [InlineData(201)]
    [InlineData(204)]
    [InlineData(299)]
    public async Task A_2xx_other_than_200_over_http2_sends_the_tunnel_to_the_next_relay_and_resets_its_stream(int status)
    {
        var serve = AnsweredInTurn(stream => HostileConnection.Answer(stream, status));
        await using var first = HostileRelay.Start(serve);
        await using var second = HostileRelay.Start(serve);
        await using var client = await StartClientAsync(first, second);

        await using (var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))
        {
            await AssertEchoesAsync(tunnel);
        }
        Assert.Equal(1, first.Tunnels);
        Assert.Equal(1, second.Tunnels);
        var answered = client.Status.Single(r => !r.IsUp).Relay == first.Address.ToString() ? first : second;
        // Its stream reset, or the connection that carried it closed (the relay is dropped as failed): either ends it.
        await Timeouts.WaitUntilAsync(
            () => answered.Connections.Where(c => c.Tunnels > 0).All(c => c.Closed.IsCompleted || c.Received.Any(f => f.Type == RawHttp2.RstStream)),
            () => Connections(answered));

        // With no other relay, the application is told why.
        await using var alone = HostileRelay.Start((connection, stream) => connection.SendAsync(HostileConnection.Answer(stream, status)));
        await using var aloneClient = await StartClientAsync(alone);
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => aloneClient.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, error.Failure);
        Assert.Contains($"{status}: ", error.Message);
        Assert.Contains("only a 200", error.Message);
    }

    /// <summary>
    /// When no relay opens the tunnel, the application is told the most telling failure seen, whatever the relays'
    /// order: a destination's (it ends the search), else a 407 (it needs credentials, not another relay), else a
    /// relay's own. A relay that answered 407 stays up; one that failed is down.
    /// </summary>
    [Theory]
    [InlineData("407", "407", TunnelFailure.AuthenticationRequired)]
    [InlineData("407", "404", TunnelFailure.AuthenticationRequired)]
    [InlineData("404", "407", TunnelFailure.AuthenticationRequired)]
    [InlineData("407", "503", TunnelFailure.AuthenticationRequired)]
    [InlineData("407", "502 connection_refused", TunnelFailure.ConnectionRefused)]
    [InlineData("503", "404", TunnelFailure.RelayError)]
    public async Task When_no_relay_opens_the_tunnel_the_most_telling_failure_is_reported(string firstAnswer, string secondAnswer, TunnelFailure expected)
    {
        var serve = AnsweredInTurn(Refusal(firstAnswer), Refusal(secondAnswer));
        await using var first = HostileRelay.Start(serve);
        await using var second = HostileRelay.Start(serve);
        await using var client = await StartClientAsync(first, second);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(expected, error.Failure);
        Assert.Equal(1, first.Tunnels);
        Assert.Equal(1, second.Tunnels);
        var up = (firstAnswer.StartsWith("407", StringComparison.Ordinal) ? 1 : 0) + (secondAnswer is "407" or "502 connection_refused" ? 1 : 0);
        Assert.Equal(up, client.Status.Count(r => r.IsUp));
    }

    /// <summary>
    /// A 503 whose Proxy-Status names the destination's failure (as a proxy that answers a refused connection with 503
    /// may send) is that failure: the relay stays up and no other relay is asked. It used to be read as the relay at
    /// its limit, so one unreachable destination took every relay down in turn.
    /// </summary>
    [Fact]
    public async Task A_503_that_names_the_destination_s_failure_is_that_failure_and_leaves_the_relay_up()
    {
        static Task Refuse(HostileConnection connection, int stream) =>
            connection.SendAsync(HostileConnection.Answer(stream, 503, endStream: true, ("proxy-status", "other-proxy; error=connection_refused")));
        await using var first = HostileRelay.Start(Refuse);
        await using var second = HostileRelay.Start(Refuse);
        await using var client = await StartClientAsync(first, second);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.ConnectionRefused, error.Failure);
        Assert.Equal(1, first.Tunnels + second.Tunnels);
        Assert.All(client.Status, r => Assert.True(r.IsUp));
    }

    /// <summary>
    /// A header block the HTTP client refuses to decode: 200 KB of one field, in frames of the default maximum size; a
    /// <paramref name="trailing"/> one (after the answer's) without <c>:status</c>.
    /// </summary>
    private static IEnumerable<byte[]> HeaderBlockOverTheLimit(int stream, bool trailing = false)
    {
        (string, string) big = ("x-big", new string('a', 200_000));
        var block = trailing ? RawHttp2.HeaderBlock(big) : RawHttp2.HeaderBlock((":status", "200"), big);
        for (var offset = 0; offset < block.Length; offset += 16_384)
        {
            var length = Math.Min(16_384, block.Length - offset);
            var flags = offset + length == block.Length ? RawHttp2.EndHeaders : (byte)0;
            yield return RawHttp2.Frame(offset == 0 ? RawHttp2.Headers : RawHttp2.Continuation, flags, stream, block.AsSpan(offset, length));
        }
    }

    /// <summary>
    /// A tunnel request still waiting to be sent on a connection that the relay breaks (a header block the HTTP client
    /// cannot decode) fails as the relay's failure, like the request the block answered. The HTTP client hands such a
    /// request the decoder's own exception, of a type of its own that is neither an HttpRequestException nor an
    /// IOException, and that used to escape <see cref="PassageClient.ConnectAsync"/> (and a probe, the probe loop). Here
    /// the request waits behind the client's writes, which the relay holds back by not reading.
    /// </summary>
    [Fact]
    public async Task A_tunnel_request_waiting_to_be_sent_when_the_relay_breaks_http2_fails_as_the_relays_failure()
    {
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var opened = new TaskCompletionSource<(HostileConnection Connection, int Stream)>(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            if (connection.Tunnels > 1)
            {
                return; // Never answered.
            }
            // The first tunnel: answered, the client let send as much as it likes, and nothing read from it meanwhile.
            connection.HoldReads(release.Task);
            await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. HostileConnection.WindowUpdate(0, 1 << 30), .. HostileConnection.WindowUpdate(stream, 1 << 30)]);
            opened.SetResult((connection, stream));
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var (connection, stream) = await opened.Task.WaitAsync(Timeouts.Default);
        var flooding = tunnel.WriteAsync(new byte[64 << 20]).AsTask();
        // The relay's receive queue full (it no longer grows between two looks): the client's writes back up behind it,
        // and a request sent now waits behind them. Were they not backed up yet, the request would go out at once and the
        // test pass without showing anything; it cannot pass wrongly.
        var unread = -1;
        await Timeouts.WaitUntilAsync(() => unread == (unread = connection.Unread) && unread > 0, () => $"{connection.Unread} bytes unread");

        var waiting = client.ConnectAsync("origin.test", 443).AsTask();
        foreach (var frame in HeaderBlockOverTheLimit(stream, trailing: true))
        {
            await connection.SendAsync(frame);
        }
        release.SetResult();
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        await Assert.ThrowsAnyAsync<IOException>(() => flooding.WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// A relay that breaks HTTP/2 in answering a tunnel request fails the attempt as its own fault, and soon: the HTTP
    /// client's limits end each of these long before any timeout of Passage's (none is set here).
    /// </summary>
    [Theory]
    [InlineData("garbage instead of SETTINGS")]
    [InlineData("no extended CONNECT")]
    [InlineData("header block over the limit")]
    [InlineData("endless CONTINUATION")]
    [InlineData("endless 1xx")]
    public async Task A_relay_that_breaks_http2_in_its_answer_fails_the_attempt_without_a_timeout(string how)
    {
        using var stop = new CancellationTokenSource();
        async Task Misbehave(HostileConnection connection, int stream)
        {
            try
            {
                switch (how)
                {
                    case "header block over the limit":
                        foreach (var frame in HeaderBlockOverTheLimit(stream))
                        {
                            await connection.SendAsync(frame);
                        }
                        break;
                    case "endless CONTINUATION":
                        await connection.SendAsync(RawHttp2.Frame(RawHttp2.Headers, 0, stream, RawHttp2.HeaderBlock((":status", "200"))));
                        while (!stop.IsCancellationRequested)
                        {
                            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Continuation, 0, stream, RawHttp2.HeaderBlock(("x-a", "b"))));
                        }
                        break;
                    case "endless 1xx":
                        while (!stop.IsCancellationRequested)
                        {
                            await connection.SendAsync(HostileConnection.Answer(stream, 103));
                        }
                        break;
                }
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                // The client has had enough.
            }
        }
        var start = how switch
        {
            "garbage instead of SETTINGS" => "HTTP/1.1 400 Bad Request\r\n\r\n"u8.ToArray(),
            "no extended CONNECT" => RawHttp2.SettingsFrame(),
            _ => null,
        };
        await using var relay = HostileRelay.Start(Misbehave, start);
        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [relay.Address],
            ProbeInterval = TimeSpan.FromHours(1),
            AnswerTimeout = Timeout.InfiniteTimeSpan,
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        await stop.CancelAsync();
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        Assert.False(client.Status.Single().IsUp);
        // And the connection that carried the request is not kept (the probes' connections may be: the relay answers
        // those well).
        await Timeouts.WaitUntilAsync(() => relay.Connections.Where(c => c.Tunnels > 0).All(c => c.Closed.IsCompleted), () => Connections(relay));
    }

    /// <summary>
    /// A tunnel that the relay breaks after its 200 ends in an error for the application, never in a clean end of
    /// stream that would pass a cut-off answer for a whole one.
    /// </summary>
    [Theory]
    [InlineData("RST_STREAM CONNECT_ERROR")]
    [InlineData("GOAWAY without the stream")]
    [InlineData("TCP closed between frames")]
    [InlineData("TCP closed in a frame")]
    public async Task A_tunnel_the_relay_breaks_after_its_200_ends_in_an_error(string how)
    {
        // The tunnel is read once the relay is done with it.
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. RawHttp2.Frame(RawHttp2.Data, 0, stream, "some"u8)]);
            try
            {
                await BreakAsync(connection, stream, how);
            }
            finally
            {
                done.TrySetResult();
            }
        });
        await using var client = await StartClientAsync(relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await done.Task.WaitAsync(Timeouts.Default);

        var buffer = new byte[64 * 1024];
        await Assert.ThrowsAnyAsync<IOException>(async () =>
        {
            while (await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default) > 0)
            {
            }
        });
    }

    /// <summary>
    /// A relay that answers 200 and then breaks every tunnel before its first byte (resets the stream with an error,
    /// drops the connection) stayed up: health was judged from setups and probes only, so every new tunnel went to it
    /// again. Such a break, soon after the 200, now counts as the relay's failure: the application still gets the
    /// error on its tunnel (nothing is retried: it has its stream), but the relay is taken for down and the next tunnel
    /// goes to the other relay.
    /// </summary>
    [Theory]
    [InlineData("RST_STREAM INTERNAL_ERROR")]
    [InlineData("RST_STREAM CANCEL")]
    [InlineData("GOAWAY without the stream")]
    [InlineData("TCP closed between frames")]
    public async Task A_relay_that_breaks_a_tunnel_before_its_first_byte_is_taken_for_down(string how)
    {
        // Whichever relay the first tunnel goes to breaks it; every later tunnel is answered 200 and echoed.
        var requests = 0;
        async Task Serve(HostileConnection connection, int stream)
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            if (Interlocked.Increment(ref requests) == 1)
            {
                await BreakAsync(connection, stream, how);
                return;
            }
            connection.Echo(stream);
        }
        await using var first = HostileRelay.Start(Serve);
        await using var second = HostileRelay.Start(Serve);
        await using var client = await StartClientAsync(new ManualTimeProvider(), first, second);

        await using (var broken = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))
        {
            await Assert.ThrowsAnyAsync<IOException>(async () => await broken.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        }
        var breaker = first.Tunnels == 1 ? first : second;
        Assert.False(client.Status.Single(r => r.Relay == breaker.Address.ToString()).IsUp);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await AssertEchoesAsync(tunnel);
        Assert.Equal(1, first.Tunnels);
        Assert.Equal(1, second.Tunnels);
    }

    /// <summary>
    /// The same when the application writes first and never reads (a TLS client whose hello fails): a relay that drops the
    /// connection right after its 200 fails the tunnel's writes, and is taken for down. A write's failure was not watched:
    /// the relay stayed up, and the next tunnel went to it again. (A stream reset fails no write: a read sees it.)
    /// </summary>
    [Fact]
    public async Task A_relay_that_drops_the_connection_before_the_first_byte_is_taken_for_down_when_the_application_only_wrote()
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            connection.Shutdown();
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using (var broken = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))
        {
            await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(broken).WaitAsync(Timeouts.Default));
        }
        Assert.False(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A write that waits for the relay's flow-control window when the relay's connection ends fails, and the relay is taken
    /// for down. The .NET HTTP/2 client left it waiting for good (it fails waiting writes only of a request body, and an
    /// extended CONNECT has none): an application that only wrote hung. The relay here ends the connection only once the
    /// client has used the whole window, so the next write is surely waiting. The same for a reset of the stream; one with
    /// CONNECT_ERROR (the destination reset its connection) fails the write and leaves the relay up. The same again with
    /// bytes from the relay sitting unread, sent before the write waited or while it waited (the relay breaks the tunnel
    /// then once the client has acknowledged a PING sent behind them: it has taken them in): the tunnel's zero-byte read
    /// that watches the stream ended at once, and the write waited for good.
    /// </summary>
    [Theory]
    [InlineData("TCP closed between frames", "none")]
    [InlineData("RST_STREAM INTERNAL_ERROR", "none")]
    [InlineData("RST_STREAM CONNECT_ERROR", "none")]
    [InlineData("TCP closed between frames", "before the write waits")]
    [InlineData("RST_STREAM INTERNAL_ERROR", "before the write waits")]
    [InlineData("RST_STREAM CONNECT_ERROR", "before the write waits")]
    [InlineData("TCP closed between frames", "while the write waits")]
    [InlineData("RST_STREAM INTERNAL_ERROR", "while the write waits")]
    public async Task A_write_waiting_for_the_relays_window_fails_when_the_relay_breaks_the_tunnel(string how, string unreadBytes)
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200),
                .. unreadBytes == "before the write waits" ? RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8) : []]);
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            if (unreadBytes == "while the write waits")
            {
                await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8));
                await PingedAsync(connection);
            }
            await BreakAsync(connection, stream, how);
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using (var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))
        {
            await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(tunnel).WaitAsync(Timeouts.Default));
        }
        if (unreadBytes == "none")
        {
            // With bytes sent first, the relay is up if the tunnel took them in before the break (they are its first
            // byte), which the reset may or may not overtake.
            Assert.Equal(how == "RST_STREAM CONNECT_ERROR", client.Status.Single().IsUp);
        }
    }

    /// <summary>
    /// The same when the application is reading all along (the tunnel's own zero-byte read then stays out of its way): the
    /// read's failure at the reset ends the waiting write too.
    /// </summary>
    [Fact]
    public async Task A_write_waiting_for_the_window_beside_a_read_fails_with_the_read_when_the_relay_resets_the_tunnel()
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var read = tunnel.ReadAsync(new byte[16]).AsTask();
        await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(tunnel).WaitAsync(Timeouts.Default));
        await Assert.ThrowsAnyAsync<IOException>(() => read.WaitAsync(Timeouts.Default));
        await Assert.ThrowsAnyAsync<IOException>(() => tunnel.WriteAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.False(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A write that began to wait for the window while the application was reading is still watched once that read has
    /// ended and the application reads no more: the relay's reset after the bytes the read got fails the write. It waited
    /// for good: the tunnel's own zero-byte read is not started while the application reads, and was not started after.
    /// </summary>
    [Fact]
    public async Task A_write_that_began_waiting_during_a_read_fails_at_a_reset_after_that_read_ended()
    {
        var readDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8));
            await readDone.Task;
            await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var buffer = new byte[16];
        var read = tunnel.ReadAsync(buffer).AsTask();
        var write = tunnel.WriteAsync(new byte[70_000]).AsTask();
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, await read.WaitAsync(Timeouts.Default)));
        Assert.False(write.IsCompleted);
        readDone.SetResult();
        await Assert.ThrowsAnyAsync<IOException>(() => write.WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// Bytes that the tunnel read ahead from the relay while a write waited (beyond what it reads ahead, too) reach the
    /// application in order, and the write is still watched after the application has read them: the relay's reset
    /// fails it. The application's having read a byte leaves the relay up.
    /// </summary>
    [Fact]
    public async Task Relay_bytes_read_ahead_for_a_waiting_write_reach_the_application_in_order_and_the_write_is_still_watched()
    {
        var readDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var bulk = System.Security.Cryptography.RandomNumberGenerator.GetBytes(40_000);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8)]);
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            for (var at = 0; at < bulk.Length; at += 16_384)
            {
                await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, bulk.AsSpan(at, Math.Min(16_384, bulk.Length - at))));
            }
            await readDone.Task;
            await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var write = tunnel.WriteAsync(new byte[70_000]).AsTask();
        var back = new byte[5 + bulk.Length];
        // Small reads: some take part of what was read ahead.
        for (var at = 0; at < back.Length;)
        {
            var read = await tunnel.ReadAsync(back.AsMemory(at, Math.Min(3_000, back.Length - at))).AsTask().WaitAsync(Timeouts.Default);
            Assert.NotEqual(0, read);
            at += read;
        }
        Assert.Equal((byte[])[.. "hello"u8, .. bulk], back);
        Assert.False(write.IsCompleted);
        readDone.SetResult();
        await Assert.ThrowsAnyAsync<IOException>(() => write.WaitAsync(Timeouts.Default));
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A write that waits for the window while more relay bytes sit unread than the tunnel reads ahead fails when the relay
    /// breaks the tunnel, though the application reads nothing. The watch stopped once its read-ahead was full (it would
    /// start again only at the application's next read), and the write waited for good.
    /// </summary>
    [Theory]
    [InlineData("RST_STREAM INTERNAL_ERROR", "before the write waits")]
    [InlineData("RST_STREAM CONNECT_ERROR", "before the write waits")]
    [InlineData("TCP closed between frames", "before the write waits")]
    [InlineData("RST_STREAM INTERNAL_ERROR", "while the write waits")]
    [InlineData("TCP closed between frames", "while the write waits")]
    public async Task A_write_waiting_for_the_window_fails_when_the_relay_breaks_the_tunnel_with_more_unread_than_is_read_ahead(string how, string unreadBytes)
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            if (unreadBytes == "before the write waits")
            {
                await SendBulkAsync(connection, stream, 40_000);
            }
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            if (unreadBytes == "while the write waits")
            {
                await SendBulkAsync(connection, stream, 40_000);
            }
            await PingedAsync(connection);
            await BreakAsync(connection, stream, how);
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(tunnel).WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// Relay bytes the tunnel read ahead for a waiting write are not handed out once the application has disposed the
    /// tunnel: a read then throws <see cref="ObjectDisposedException"/>, as the stream under it does. They were returned.
    /// </summary>
    [Fact]
    public async Task A_read_after_the_tunnel_is_disposed_throws_though_bytes_were_read_ahead()
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8));
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var write = tunnel.WriteAsync(new byte[70_000]).AsTask();
        await Timeouts.WaitUntilAsync(() => ((TunnelStream)tunnel).ReadAhead == 5, () => $"read ahead: {((TunnelStream)tunnel).ReadAhead}");
        await tunnel.DisposeAsync();
        await Assert.ThrowsAnyAsync<Exception>(() => write.WaitAsync(Timeouts.Default));

        Assert.Throws<ObjectDisposedException>(() => tunnel.Read(new byte[16], 0, 16));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => tunnel.ReadAsync(new byte[16]).AsTask());
    }

    /// <summary>
    /// A relay that delivered bytes, which the tunnel read ahead for a waiting write, and then breaks the tunnel has not
    /// broken it before its first byte: it stays up, though the application read none of them. It was taken for down.
    /// </summary>
    [Fact]
    public async Task A_relay_that_breaks_a_tunnel_after_bytes_read_ahead_for_a_waiting_write_stays_up()
    {
        var readAhead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8));
            await readAhead.Task;
            await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var write = tunnel.WriteAsync(new byte[70_000]).AsTask();
        await Timeouts.WaitUntilAsync(() => ((TunnelStream)tunnel).ReadAhead == 5, () => $"read ahead: {((TunnelStream)tunnel).ReadAhead}");
        readAhead.SetResult();
        await Assert.ThrowsAnyAsync<IOException>(() => write.WaitAsync(Timeouts.Default));
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A write that waits for the window after the relay has ended its side of the tunnel (END_STREAM: the destination
    /// closed its sending half) fails when the relay's connection then ends, whether the application read that end or
    /// not. The watch stopped at the end of stream, and the write waited for good: the HTTP client tells the stream of
    /// nothing more then, not even its connection's end. (Nor of a reset of the stream: a relay's RST_STREAM after its
    /// END_STREAM still leaves such a write waiting.)
    /// </summary>
    [Theory]
    [InlineData("TCP closed between frames", true)]
    [InlineData("TCP closed between frames", false)]
    public async Task A_write_waiting_for_the_window_fails_when_the_relays_connection_ends_after_it_ended_its_side(string how, bool applicationReadTheEnd)
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. RawHttp2.Frame(RawHttp2.Data, RawHttp2.EndStream, stream, "bye"u8)]);
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await PingedAsync(connection);
            await BreakAsync(connection, stream, how);
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        if (applicationReadTheEnd)
        {
            var back = new byte[16];
            Assert.Equal(3, await tunnel.ReadAsync(back).AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal(0, await tunnel.ReadAsync(back).AsTask().WaitAsync(Timeouts.Default));
        }
        await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(tunnel).WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// A write the relay's breaking fails says so in Passage's words, naming the relay and what broke, with the HTTP
    /// client's own failure inside. It carried the HTTP client's text (or that text behind a generic prefix).
    /// </summary>
    [Theory]
    [InlineData("RST_STREAM INTERNAL_ERROR", "the relay reset the tunnel")]
    [InlineData("RST_STREAM CONNECT_ERROR", "the destination reset its connection")]
    [InlineData("TCP closed between frames", "the connection to the relay ended")]
    public async Task A_write_the_relays_breaking_fails_names_the_relay_and_what_broke(string how, string what)
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await BreakAsync(connection, stream, how);
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var error = await Assert.ThrowsAnyAsync<IOException>(() => WriteUntilItFailsAsync(tunnel).WaitAsync(Timeouts.Default));
        Assert.Contains($"relay {relay.Address.Host}:{relay.Address.Port}", error.Message, StringComparison.Ordinal);
        Assert.Contains(what, error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.InnerException);
        // And every write after it says the same.
        var next = await Assert.ThrowsAnyAsync<IOException>(() => tunnel.WriteAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Contains(what, next.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A read the application starts while a write waits for the window (and the tunnel watches the stream for that write)
    /// gets the relay's bytes, and the write goes on once the relay opens the window: the watch keeps no byte from the
    /// application and does not stand in the way of either.
    /// </summary>
    [Fact]
    public async Task A_read_while_a_write_waits_for_the_window_gets_the_relays_bytes_and_the_write_goes_on()
    {
        var readDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 65_535);
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "hello"u8));
            await readDone.Task;
            await connection.SendAsync((byte[])[.. HostileConnection.WindowUpdate(0, 65_535), .. HostileConnection.WindowUpdate(stream, 65_535)]);
            await Timeouts.WaitUntilAsync(() => Sent(connection, stream) >= 70_000);
            await connection.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, stream, "bye"u8));
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var write = tunnel.WriteAsync(new byte[70_000]).AsTask();
        var buffer = new byte[16];
        Assert.Equal("hello", System.Text.Encoding.ASCII.GetString(buffer, 0, await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default)));
        Assert.False(write.IsCompleted);
        readDone.SetResult();
        await write.WaitAsync(Timeouts.Default);
        Assert.Equal("bye", System.Text.Encoding.ASCII.GetString(buffer, 0, await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default)));
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// What is not the relay's breaking leaves it up: the destination closing at once (END_STREAM, a clean end), the
    /// destination resetting its connection (RST_STREAM with CONNECT_ERROR, RFC 9113 §8.5: any relay would see that),
    /// a break after the tunnel has carried a byte, and one long (on the client's clock) after the 200.
    /// </summary>
    [Theory]
    [InlineData("END_STREAM")]
    [InlineData("RST_STREAM CONNECT_ERROR")]
    [InlineData("a byte, then RST_STREAM INTERNAL_ERROR")]
    [InlineData("RST_STREAM INTERNAL_ERROR, a minute later")]
    public async Task A_tunnel_that_ends_by_the_destination_or_after_a_byte_or_late_leaves_the_relay_up(string how)
    {
        var time = new ManualTimeProvider();
        var byteRead = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            switch (how)
            {
                case "END_STREAM":
                    await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. RawHttp2.Frame(RawHttp2.Data, RawHttp2.EndStream, stream, [])]);
                    break;
                case "RST_STREAM CONNECT_ERROR":
                    await connection.SendAsync(HostileConnection.Answer(stream, 200));
                    await BreakAsync(connection, stream, how);
                    break;
                case "RST_STREAM INTERNAL_ERROR, a minute later":
                    await connection.SendAsync(HostileConnection.Answer(stream, 200));
                    await byteRead.Task;
                    await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
                    break;
                default:
                    await connection.SendAsync((byte[])[.. HostileConnection.Answer(stream, 200), .. RawHttp2.Frame(RawHttp2.Data, 0, stream, "x"u8)]);
                    await byteRead.Task;
                    await BreakAsync(connection, stream, "RST_STREAM INTERNAL_ERROR");
                    break;
            }
        });
        await using var client = await StartClientAsync(time, relay);

        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var buffer = new byte[16];
        switch (how)
        {
            case "END_STREAM":
                Assert.Equal(0, await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
                break;
            case "RST_STREAM CONNECT_ERROR":
                await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
                break;
            case "RST_STREAM INTERNAL_ERROR, a minute later":
                time.Advance(TimeSpan.FromMinutes(1));
                byteRead.SetResult();
                await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
                break;
            default:
                Assert.Equal(1, await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
                byteRead.SetResult();
                await Assert.ThrowsAnyAsync<IOException>(async () => await tunnel.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
                break;
        }
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// The application's own end of a tunnel is not the relay's breaking it: an application that disposes its tunnel
    /// while a read waits for the destination's first byte (one that gives up, or resets its connection to the local
    /// proxy: the pump's teardown disposes the tunnel under its parked zero-byte read) failed that read with the
    /// stream's abort, an <see cref="IOException"/> without CONNECT_ERROR, and the relay was taken for down.
    /// </summary>
    [Theory]
    [InlineData(16)]
    [InlineData(0)]
    public async Task An_application_that_disposes_its_tunnel_under_a_waiting_read_leaves_the_relay_up(int readSize)
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            connection.Echo(stream);
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
        });
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);

        var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        var read = tunnel.ReadAsync(new byte[readSize]).AsTask();
        await tunnel.DisposeAsync();
        var error = await Record.ExceptionAsync(() => read.WaitAsync(Timeouts.Default));
        Assert.True(error is not null, "the read ended without an error");
        Assert.True(client.Status.Single().IsUp, $"taken for down after {error.GetType().Name}: {error.Message}");
    }

    /// <summary>
    /// A relay connection that drops breaks every tunnel it carried at once: one failure of the relay, counted once.
    /// Each broken tunnel used to count as soon as its application read it, while the relay was up: one read after the
    /// relay had been probed up again took it for down a second time (and dropped its new connections) for a break
    /// already counted.
    /// </summary>
    [Fact]
    public async Task The_tunnels_of_one_dropped_connection_take_the_relay_for_down_once()
    {
        var tunnels = 0;
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            if (Interlocked.Increment(ref tunnels) == 2)
            {
                connection.Shutdown();
            }
        });
        var time = new ManualTimeProvider();
        await using var client = await StartClientAsync(time, relay);
        await using var first = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await using var second = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        Assert.Single(relay.Connections);

        await Assert.ThrowsAnyAsync<IOException>(async () => await first.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.False(client.Status.Single().IsUp);
        // Past its backoff, the relay is probed on a new connection, and up again.
        time.Advance(TimeSpan.FromSeconds(1));
        await Timeouts.WaitUntilAsync(() => client.Status.Single().IsUp, () => "the relay was not probed up again");

        await Assert.ThrowsAnyAsync<IOException>(async () => await second.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.True(client.Status.Single().IsUp);
    }
}
