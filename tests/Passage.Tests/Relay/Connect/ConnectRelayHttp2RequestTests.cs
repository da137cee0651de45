using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// HTTP/2 requests the relay refuses before a tunnel is opened, each answered with a status and a Proxy-Status and
/// counted refused, as over HTTP/1.1. The targets name a destination that would be reached, so that a request let
/// through would get 200.
/// </summary>
public sealed class ConnectRelayHttp2RequestTests
{
    /// <summary>A 400 as Kestrel writes it: <c>:status</c> from HPACK's static table (RFC 7541 Appendix A, index 12).</summary>
    private const byte Status400 = 0x8c;

    [Theory]
    // Percent-encoded twice: read once, the host holds '%', as an HTTP/1.1 target would.
    [InlineData("/.well-known/masque/tcp/%2531%2532%2537.0.0.1/{port}/", "request target is not in authority-form (host:port)")]
    [InlineData("/.well-known/masque/tcp/user%40127.0.0.1/{port}/", "request target is not in authority-form (host:port)")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1/{port}/?x=1", "path is not /.well-known/masque/tcp/{host}/{port}/")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1/{port}/#x", "path is not /.well-known/masque/tcp/{host}/{port}/")]
    [InlineData("/.well-known/masque/tcp/localhost%3A80/{port}/", "request target has a malformed IPv6 literal")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1%/{port}/", "malformed percent-encoding in the target host")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1%2/{port}/", "malformed percent-encoding in the target host")]
    [InlineData("/.well-known/masque/tcp/%5B%3A%3A1/{port}/", "unclosed IPv6 literal in the request target")]
    [InlineData("/.well-known/masque/tcp/%3A%3A1%25lo/{port}/", "request target has a malformed IPv6 literal")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1/0{port}0/", "request target port is not a number from 1 to 65535")]
    [InlineData("/.well-known/masque/tcp/127.0.0.1/+{port}/", "request target port is not a number from 1 to 65535")]
    [InlineData("/.well-known/masque/tcp//{port}/", "path is not /.well-known/masque/tcp/{host}/{port}/")]
    public async Task A_target_path_not_read_as_an_http1_target_would_be_gets_400_with_proxy_status_and_is_counted(string path, string detail)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, RawHttp2.ExtendedConnect(1, path.Replace("{port}", echo.Port.ToString(), StringComparison.Ordinal)));

        AssertRefused400(relay, answer, detail);
    }

    [Fact]
    public async Task A_request_with_two_proxy_authorization_fields_gets_400_as_on_the_http1_door()
    {
        // Kestrel joined the two with a comma: a relay that required no credentials opened the tunnel the HTTP/1.1 door
        // refuses, and one that did answered 407, as if none had come.
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(
            (":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":authority", "relay.test"),
            (":path", MasqueTcpPathFor(echo.Port)), ("proxy-authorization", "Bearer a"), ("proxy-authorization", "Bearer b"))));

        AssertRefused400(relay, answer, "more than one Proxy-Authorization field");
    }

    [Theory]
    // RFC 9110 §9.3.6: a CONNECT has no content. Over HTTP/2 a content-length bounds the request's DATA, which Kestrel
    // holds it to: such a tunnel was answered 200, then reset with PROTOCOL_ERROR after that many bytes (zero: at the first).
    [InlineData(false, "content-length", "4", "content on a CONNECT request")]
    [InlineData(false, "content-length", "0", "content-length on an HTTP/2 CONNECT request")]
    [InlineData(false, "transfer-encoding", "chunked", "Transfer-Encoding on a CONNECT request")]
    [InlineData(true, "content-length", "4", "content on a CONNECT request")]
    [InlineData(true, "content-length", "0", "content-length on an HTTP/2 CONNECT request")]
    public async Task A_connect_that_announces_content_gets_400_as_on_the_http1_door(bool extended, string name, string value, string detail)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, extended
            ? Request((":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":authority", "relay.test"), (":path", MasqueTcpPathFor(echo.Port)), (name, value))
            : Request((":method", "CONNECT"), (":authority", $"127.0.0.1:{echo.Port}"), (name, value)));

        AssertRefused400(relay, answer, detail);
    }

    [Theory]
    // The authority is the target, read as an HTTP/1.1 CONNECT's; one that is no host[:port] at all comes as
    // AuthorityFieldEncoding reads it (so that Kestrel lets it through), which no target is.
    [InlineData("127.0.0.1", "request target has no port")]
    [InlineData("127.0.0.1:0", "request target is not in authority-form (host:port)")]
    [InlineData("127.0.0.1:+{port}", "request target is not in authority-form (host:port)")]
    [InlineData("127.0.0.1:{port}0", "request target is not in authority-form (host:port)")]
    [InlineData("[::1%25lo]:{port}", "request target is not in authority-form (host:port)")]
    [InlineData("user@127.0.0.1:{port}", "request target is not in authority-form (host:port)")]
    public async Task A_classic_connect_whose_authority_is_not_an_http1_target_gets_400_with_proxy_status_and_is_counted(string authority, string detail)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, Request((":method", "CONNECT"), (":authority", authority.Replace("{port}", echo.Port.ToString(), StringComparison.Ordinal))));

        AssertRefused400(relay, answer, detail);
    }

    [Theory]
    // What Kestrel lets through of itself (for bytes it would not take in a host, see below).
    [InlineData("")]
    [InlineData("relay.test:99999")]
    [InlineData("relay.test:0")]
    public async Task An_extended_connect_whose_authority_is_not_host_and_port_gets_400_with_proxy_status_and_is_counted(string authority)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, RawHttp2.ExtendedConnect(1, MasqueTcpPathFor(echo.Port), authority));

        AssertRefused400(relay, answer, ":authority is missing or not host[:port]");
    }

    [Theory]
    // Bytes Kestrel's host check refuses (it reset the stream with PROTOCOL_ERROR before the relay saw the request),
    // which the HTTP/1.1 door answers 400: obs-text and UTF-8 (RFC 9110 §5.5), a control character, userinfo, a
    // space, a path.
    [InlineData("r\u00e9lay.test")]
    [InlineData("relay.test\u00ff")]
    [InlineData("\u00c3\u00a9.test:443")]
    [InlineData("[::1\u00e9]:443")]
    [InlineData("relay\u007f.test")]
    [InlineData("user@relay.test")]
    [InlineData("relay .test")]
    [InlineData("relay.test/x")]
    // Shapes Kestrel's host check refuses (it reset the stream so too): a port alone, a bracket left open, more after
    // the host than a port, a bracketed literal shorter than [::1].
    [InlineData(":443")]
    [InlineData("[::1")]
    [InlineData("[::1]x")]
    [InlineData("relay.test:443x")]
    [InlineData("[::]")]
    [InlineData("[::]:443")]
    [InlineData("[]")]
    public async Task An_authority_kestrel_cannot_read_as_a_host_gets_400_with_proxy_status_and_the_connection_serves_on(string authority)
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
        await h2.SendAsync(RawHttp2.ExtendedConnect(1, MasqueTcpPathFor(echo.Port), authority));

        var answer = await h2.ReadUntilAsync(f => f.Stream == 1);

        Assert.NotNull(answer);
        AssertRefused400(relay, answer, ":authority is missing or not host[:port]");
        // The same bytes again, and then a good request, on the same connection: the first is answered as before, the
        // second served.
        await h2.SendAsync(RawHttp2.ExtendedConnect(3, MasqueTcpPathFor(echo.Port), authority));
        Assert.Equal(Status400, (await h2.ReadUntilAsync(f => f.Stream == 3))?.Payload[0]);
        await h2.SendAsync(RawHttp2.ExtendedConnect(5, MasqueTcpPathFor(echo.Port), "relay.test"));
        var served = await h2.ReadUntilAsync(f => f.Stream == 5);
        Assert.Equal(RawHttp2.Headers, served?.Type);
        Assert.Equal(200, served!.Status);
    }

    [Theory]
    [InlineData("/.well-known/masque/tcp/%3A%3A/{port}/")]
    [InlineData("/.well-known/masque/tcp/%5B%3A%3A%5D/{port}/")]
    [InlineData("/.well-known/masque/tcp/0.0.0.0/{port}/")]
    public async Task The_unspecified_address_as_the_destination_gets_403_with_proxy_status_though_private_ones_are_allowed(string path)
    {
        // Many stacks connect it to the local host: the address policy refuses it whatever else it allows.
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, RawHttp2.ExtendedConnect(1, path.Replace("{port}", echo.Port.ToString(), StringComparison.Ordinal)));

        Assert.Equal(403, answer.Status);
        Assert.Contains("passage; error=destination_ip_prohibited; details=\"resolves to an unspecified address\"", answer.Text);
        Assert.Equal(1, relay.Counter("passage.relay.connections.refused/destination_ip_prohibited"));
        Assert.Equal(0, relay.Total("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task An_extended_connect_without_authority_gets_400_and_one_with_a_host_alone_or_an_ipv6_literal_is_served()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var missing = Request((":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":path", MasqueTcpPathFor(echo.Port)));
        AssertRefused400(relay, await AnswerAsync(relay, missing), ":authority is missing or not host[:port]");

        foreach (var authority in new[] { "relay.test", "relay.test:8443", "[::1]:8443", "127.0.0.1" })
        {
            var served = await AnswerAsync(relay, RawHttp2.ExtendedConnect(1, MasqueTcpPathFor(echo.Port), authority));
            // :status 200 (static table index 8).
            Assert.Equal(0x88, served.Payload[0]);
        }
    }

    [Theory]
    [InlineData(1, Http1ParseLimits.DefaultMaxHeadBytes, "request head larger than the limit")]
    [InlineData(Http1ParseLimits.DefaultMaxHeaderCount + 1, 1, "too many header fields")]
    public async Task A_header_list_past_the_bounds_of_an_http1_head_gets_431_with_proxy_status_and_is_counted(int fields, int valueLength, string detail)
    {
        // Within Kestrel's bounds (32 KiB, 100 fields): Kestrel took it, and the relay opened the tunnel.
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync();
        var answer = await AnswerAsync(relay, WithFields(MasqueTcpPathFor(echo.Port), fields, valueLength));

        Assert.Equal(431, answer.Status);
        Assert.Contains($"passage; error=http_request_error; details=\"{detail}\"", answer.Text);
        Assert.Equal(1, relay.Counter("passage.relay.connections.refused/http_request_head_too_large"));
        Assert.Equal(0, relay.Total("passage.relay.tunnels.opened"));
    }

    [Fact]
    public async Task A_header_list_within_a_raised_head_limit_is_served_though_past_kestrels_default()
    {
        // 39 KB of fields, over Kestrel's default 32 KiB (which answered a bare 431), under the relay's 64 KiB.
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o => o with { MaxRequestHeadBytes = 64 * 1024 });
        var answer = await AnswerAsync(relay, WithFields(MasqueTcpPathFor(echo.Port), 3, 13_000));

        Assert.Equal(200, answer.Status);
    }

    /// <summary>An extended CONNECT for <paramref name="path"/> with <paramref name="count"/> more fields of <paramref name="valueLength"/> bytes each, in CONTINUATION frames as needed.</summary>
    internal static byte[] WithFields(string path, int count, int valueLength)
    {
        var block = RawHttp2.HeaderBlock([
            (":method", "CONNECT"), (":protocol", "connect-tcp"), (":scheme", "https"), (":authority", "relay.test"), (":path", path),
            .. Enumerable.Range(0, count).Select(i => ($"x-field-{i}", new string('v', valueLength)))]);
        const int MaxFrame = 16 * 1024;
        var frames = new List<byte>();
        for (var offset = 0; offset < block.Length; offset += MaxFrame)
        {
            var last = offset + MaxFrame >= block.Length;
            var piece = block.AsSpan(offset, Math.Min(MaxFrame, block.Length - offset));
            frames.AddRange(RawHttp2.Frame(offset == 0 ? RawHttp2.Headers : RawHttp2.Continuation, last ? RawHttp2.EndHeaders : (byte)0, 1, piece));
        }
        return [.. frames];
    }

    [Fact]
    public async Task Every_request_the_relay_refuses_is_answered_and_counted_by_its_reason()
    {
        await using var echo = new EchoServer();
        await using var relay = await ConnectHarness.StartAsync(o =>
        {
            var file = Path.Combine(Path.GetDirectoryName(o.KeyFile)!, "tokens");
            File.WriteAllText(file, "tok-en\n");
            return o with { TokenFile = file };
        });
        var path = MasqueTcpPathFor(echo.Port);
        (byte[] Request, int Status, string Reason)[] refusals =
        [
            (Request((":method", "GET"), (":scheme", "https"), (":authority", "relay.test"), (":path", "/")), 405, "method_not_allowed"),
            (Request((":method", "CONNECT"), (":authority", $"127.0.0.1:{echo.Port}")), 407, "authentication_required"),
            (Request((":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"), (":authority", "relay.test"), (":path", path)), 400, "http_request_error"),
            (RawHttp2.ExtendedConnect(1, path), 407, "authentication_required"),
            (WithFields(path, 1, Http1ParseLimits.DefaultMaxHeadBytes), 431, "http_request_head_too_large"),
        ];
        foreach (var (request, status, reason) in refusals)
        {
            var before = relay.Counter($"passage.relay.connections.refused/{reason}");
            var answer = await AnswerAsync(relay, request);
            Assert.Equal(status, answer.Status);
            Assert.Contains("proxy-status", answer.Text);
            Assert.Equal(before + 1, relay.Counter($"passage.relay.connections.refused/{reason}"));
        }
        Assert.Equal(refusals.Length, relay.Total("passage.relay.connections.refused"));
        Assert.Equal(0, relay.Total("passage.relay.tunnels.opened"));
    }

    private static byte[] Request(params (string Name, string Value)[] fields) =>
        RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock(fields));

    private static string MasqueTcpPathFor(int port) => MasqueTcpPath.PathFor("127.0.0.1", port);

    /// <summary>Sends <paramref name="request"/> on a new connection; returns the relay's first frame for stream 1.</summary>
    internal static async Task<RawFrame> AnswerAsync(ConnectHarness relay, byte[] request)
    {
        using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
        await h2.SendAsync(request);
        var answer = await h2.ReadUntilAsync(f => f.Stream == 1 || f.Type == RawHttp2.GoAway);
        Assert.NotNull(answer);
        return answer;
    }

    private static void AssertRefused400(ConnectHarness relay, RawFrame answer, string detail)
    {
        Assert.Equal(RawHttp2.Headers, answer.Type);
        Assert.Equal(Status400, answer.Payload[0]);
        Assert.Contains($"passage; error=http_request_error; details=\"{detail}\"", answer.Text);
        Assert.Equal(1, relay.Counter("passage.relay.connections.refused/http_request_error"));
        Assert.Equal(0, relay.Total("passage.relay.tunnels.opened"));
    }
}
