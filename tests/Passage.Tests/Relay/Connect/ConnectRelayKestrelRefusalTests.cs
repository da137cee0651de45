using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// What the CONNECT door's Kestrel refuses before the relay sees a request. A connection it closes with a GOAWAY is
/// counted in <c>passage.relay.http2.connection_errors</c> by Kestrel's error type; a stream it resets is in none of
/// Kestrel's metrics, gets no Proxy-Status and is counted nowhere.
/// </summary>
public sealed class ConnectRelayKestrelRefusalTests
{
    /// <summary>Kestrel's bound on a header field and on a header list under the relay's default head limit (its own default, 32 KiB).</summary>
    private const int KestrelBound = 32 * 1024;

    [Theory]
    // One field HPACK will not decode past the bound: COMPRESSION_ERROR.
    [InlineData("field", RawHttp2.CompressionError, "error_reading_headers")]
    // A block past twice the bound, each field within it: PROTOCOL_ERROR.
    [InlineData("block", RawHttp2.ProtocolError, "max_request_headers_total_size_exceeded")]
    // HEADERS on an even stream, which only a server may open: PROTOCOL_ERROR.
    [InlineData("even", RawHttp2.ProtocolError, "invalid_stream_id")]
    // A frame past the largest the relay's SETTINGS allow (16 KiB): FRAME_SIZE_ERROR.
    [InlineData("large", RawHttp2.FrameSizeError, "max_frame_length_exceeded")]
    // A WINDOW_UPDATE that takes the connection's window past 2^31-1: FLOW_CONTROL_ERROR.
    [InlineData("window", RawHttp2.FlowControlError, "invalid_window_update_size")]
    public async Task A_connection_kestrel_closes_with_a_goaway_is_counted_by_its_error_type_and_closed_as_the_clients_failure(string frames, uint code, string errorType)
    {
        // The connection was counted closed completed, as one its client ended well.
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var path = MasqueTcpPath.PathFor("127.0.0.1", echo.Port);
        using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
        await h2.SendAsync(frames switch
        {
            "field" => ConnectRelayHttp2RequestTests.WithFields(path, 1, KestrelBound + 1),
            "block" => ConnectRelayHttp2RequestTests.WithFields(path, 3, KestrelBound * 2 / 3 + 1),
            "large" => RawHttp2.Frame(RawHttp2.Ping, 0, 0, new byte[16 * 1024 + 1]),
            "window" => RawHttp2.Frame(RawHttp2.WindowUpdate, 0, 0, [0x7f, 0xff, 0xff, 0xff]),
            _ => RawHttp2.ExtendedConnect(2, path),
        });

        var goAway = await h2.ReadUntilAsync(f => f.Type == RawHttp2.GoAway);

        Assert.Equal(code, goAway?.ErrorCode);
        await Timeouts.WaitUntilAsync(() => relay.Total("passage.relay.http2.connection_errors") > 0);
        Assert.Equal(1, relay.Counter($"passage.relay.http2.connection_errors/{errorType}"));
        Assert.Equal(1, relay.Total("passage.relay.http2.connection_errors"));
        Assert.Equal(0, relay.Total("passage.relay.connections.refused"));
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.open") == 0);
        Assert.Equal(1, relay.Counter("passage.relay.connections.closed/client_failed"));
        Assert.Equal(1, relay.Total("passage.relay.connections.closed"));
    }

    [Fact]
    public async Task A_client_that_leaves_with_a_tunnel_open_is_no_connection_error()
    {
        // Kestrel gives this end the error type connection_reset; for a relay it is how a client leaves.
        using var kestrelEnds = new KestrelEndTypes();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        System.Net.Sockets.Socket? socket = null;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (context, cancellationToken) =>
            {
                socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(context.DnsEndPoint, cancellationToken);
                return new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
            },
        })
        {
            BaseAddress = new Uri($"http://127.0.0.1:{relay.PlainPort}"),
            DefaultRequestVersion = System.Net.HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Timeout = Timeouts.Default,
        };
        using var request = ConnectHarness.ExtendedConnect("origin.test", echo.Port);
        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);

        // The client's connection drops with the tunnel open (its host went away: a TCP reset).
        socket!.LingerState = new System.Net.Sockets.LingerOption(true, 0);
        socket.Close();

        await Timeouts.WaitUntilAsync(() => kestrelEnds.Seen("connection_reset"), () => string.Join(", ", kestrelEnds.All));
        // The tunnel, and its connection once the relay has let go of it.
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.open") == 0);
        Assert.Equal(2, relay.Counter("passage.relay.connections.closed/client_failed"));
        Assert.Equal(0, relay.Total("passage.relay.http2.connection_errors"));
    }

    [Fact]
    public async Task Connections_ended_with_errors_make_one_series_for_a_listener_outside_the_relay()
    {
        // The relay's own listener tells each connection's end through a tag on Kestrel's measurement; a listener that
        // aggregates by tag value (dotnet-counters, OpenTelemetry) must not see a series per connection.
        using var outside = new KestrelEndTypes();
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        for (int i = 0; i < 2; i++)
        {
            using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
            await h2.SendAsync(RawHttp2.ExtendedConnect(2, MasqueTcpPath.PathFor("127.0.0.1", echo.Port)));
            Assert.NotNull(await h2.ReadUntilAsync(f => f.Type == RawHttp2.GoAway));
        }

        await Timeouts.WaitUntilAsync(() => relay.Total("passage.relay.http2.connection_errors") == 2);
        await Timeouts.WaitUntilAsync(() => outside.Marks.Count >= 2, () => $"{outside.Marks.Count} marks seen");
        var marks = outside.Marks.ToArray();
        Assert.Single(marks.Distinct());
        Assert.Single(marks.Select(m => m.GetHashCode()).Distinct());
    }

    /// <summary>
    /// The error types of the connections any Kestrel in this process ends, as its <c>kestrel.connection.duration</c> gives
    /// them: once one is seen here, the relay's own listener has been given the same measurement.
    /// </summary>
    private sealed class KestrelEndTypes : IDisposable
    {
        private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
        private readonly System.Collections.Concurrent.ConcurrentBag<string> _seen = [];
        private readonly System.Collections.Concurrent.ConcurrentBag<object> _marks = [];

        public KestrelEndTypes()
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == "Microsoft.AspNetCore.Server.Kestrel" && instrument.Name == "kestrel.connection.duration")
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<double>((_, _, tags, _) =>
            {
                foreach (var tag in tags)
                {
                    if (tag is { Key: "error.type", Value: string error })
                    {
                        _seen.Add(error);
                    }
                    else if (tag is { Key: "passage.kestrel_connection_watch", Value: { } mark })
                    {
                        _marks.Add(mark);
                    }
                }
            });
            _listener.Start();
        }

        public IEnumerable<string> All => _seen;

        /// <summary>The values of the relay's own tag on the measurements seen, one per connection it watched.</summary>
        public IReadOnlyCollection<object> Marks => _marks;

        public bool Seen(string errorType) => _seen.Contains(errorType);

        public void Dispose() => _listener.Dispose();
    }

    [Theory]
    [InlineData(":protocol on a GET", RawHttp2.ProtocolError)]
    [InlineData("extended CONNECT without :scheme", RawHttp2.ProtocolError)]
    [InlineData("extended CONNECT without :path", RawHttp2.ProtocolError)]
    [InlineData("a stream past SETTINGS_MAX_CONCURRENT_STREAMS", RawHttp2.RefusedStream)]
    public async Task A_stream_kestrel_resets_before_the_relay_sees_its_request_is_counted_nowhere(string request, uint code)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o => o with { MaxStreamsPerConnection = 1 });
        var path = MasqueTcpPath.PathFor("127.0.0.1", echo.Port);
        (string, string)[] method = [(":method", "CONNECT"), (":protocol", "connect-tcp")];
        (string, string)[] scheme = [(":scheme", "https")], authority = [(":authority", "relay.test")], target = [(":path", path)];
        var (stream, frames) = request switch
        {
            ":protocol on a GET" => (1, Request([(":method", "GET"), (":protocol", "connect-tcp"), .. scheme, .. authority, (":path", "/")])),
            "extended CONNECT without :scheme" => (1, Request([.. method, .. authority, .. target])),
            "extended CONNECT without :path" => (1, Request([.. method, .. scheme, .. authority])),
            // The first opens a tunnel; the second is one more than the one stream allowed.
            _ => (3, [.. RawHttp2.ExtendedConnect(1, path), .. RawHttp2.ExtendedConnect(3, path)]),
        };
        using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
        await h2.SendAsync(frames);

        var reset = await h2.ReadUntilAsync(f => f.Stream == stream);

        Assert.Equal(RawHttp2.RstStream, reset?.Type);
        Assert.Equal(code, reset!.ErrorCode);
        Assert.Equal(0, relay.Total("passage.relay.connections.refused"));
        Assert.Equal(0, relay.Total("passage.relay.http2.connection_errors"));
    }

    private static byte[] Request(params (string Name, string Value)[] fields) =>
        RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(fields));
}
