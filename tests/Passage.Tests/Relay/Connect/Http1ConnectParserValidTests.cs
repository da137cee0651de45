using System.Net;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>Whole, valid CONNECT heads: real clients' and hand-written ones (RFC 9112 §3, §5; RFC 9110 §9.3.6).</summary>
public sealed class Http1ConnectParserValidTests
{
    public static TheoryData<HeadSource> Sources => ConnectHeadCapture.Sources;

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Real_client_heads_are_complete(HeadSource source)
    {
        var head = await ConnectHeadCapture.GetAsync(source);

        var result = Heads.Parse(head.Bytes);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(head.Bytes.Length, result.HeadLength);
        var request = Assert.IsType<ConnectRequest>(result.Request);
        Assert.Equal("CONNECT", request.Method);
        Assert.Equal(head.Host, request.Host);
        Assert.Equal(head.Port, request.Port);
        Assert.Equal(HttpVersion.Version11, request.Version);
        Assert.Equal(head.ProxyAuthorization, Heads.ProxyAuthorization(head.Bytes, request));
        Assert.NotNull(request.HostHeader);
        Assert.InRange(request.HeaderCount, 1, 10);
    }

    [Fact]
    public async Task Curl_head_is_the_one_we_expect()
    {
        // Guards the capture itself: if curl's head stops looking like this, the other tests test less.
        var head = await ConnectHeadCapture.GetAsync(HeadSource.Curl);
        string text = System.Text.Encoding.ASCII.GetString(head.Bytes);

        Assert.StartsWith("CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n", text);
        Assert.Contains("\r\nUser-Agent: curl/", text);
        Assert.EndsWith("\r\n\r\n", text);
    }

    [Fact]
    public void Minimal_head()
    {
        var result = Heads.Parse(Heads.Minimal);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(Heads.Minimal.Length, result.HeadLength);
        Assert.Equal(new ConnectRequest("CONNECT", "origin.test", 443, HttpVersion.Version11, null, "origin.test:443", 1), result.Request);
        Assert.Null(result.Refusal);
        Assert.Null(result.Detail);
    }

    [Theory]
    [InlineData("[::1]:443", "::1", 443)]
    [InlineData("[2001:db8::1]:8443", "2001:db8::1", 8443)]
    [InlineData("[::ffff:192.0.2.1]:1", "::ffff:192.0.2.1", 1)]
    [InlineData("[FE80::A:b]:65535", "FE80::A:b", 65535)]
    [InlineData("192.0.2.7:80", "192.0.2.7", 80)]
    [InlineData("Origin.Test.:00443", "Origin.Test.", 443)]
    [InlineData("under_score.example:22", "under_score.example", 22)]
    [InlineData("xn--bcher-kva.example:443", "xn--bcher-kva.example", 443)]
    public void Authority_forms(string target, string host, int port)
    {
        var result = Heads.Parse($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(host, result.Request!.Host);
        Assert.Equal(port, result.Request.Port);
        Assert.Equal(target, result.Request.HostHeader);
        Assert.Equal(1, result.Request.HeaderCount);
    }

    [Fact]
    public void Fields_the_relay_needs_are_kept_and_others_counted()
    {
        const string Head =
            "CONNECT [2001:db8::7]:443 HTTP/1.1\r\n" +
            "host:\t [2001:db8::7]:443 \t\r\n" +
            "User-Agent: test/1.0\r\n" +
            "PROXY-AUTHORIZATION:   Bearer abc.def-ghi  \r\n" +
            "X-Empty:\r\n" +
            "X-Latin1: caf\u00e9\r\n" +
            "Content-Length: 0\r\n" +
            "Proxy-Connection: Keep-Alive\r\n" +
            "\r\n";

        var result = Heads.Parse(Head);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        var request = result.Request!;
        Assert.Equal("2001:db8::7", request.Host);
        Assert.Equal("[2001:db8::7]:443", request.HostHeader);
        Assert.Equal("Bearer abc.def-ghi", Heads.ProxyAuthorization(Heads.Bytes(Head), request));
        Assert.Equal(7, request.HeaderCount);
    }

    [Fact]
    public void Http10_is_accepted()
    {
        var result = Heads.Parse("CONNECT origin.test:443 HTTP/1.0\r\n\r\n");

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(HttpVersion.Version10, result.Request!.Version);
    }

    [Theory]
    [InlineData("\r\n")]
    [InlineData("\r\n\r\n")]
    [InlineData("\n")]
    public void Empty_lines_before_the_request_line_are_skipped(string prefix)
    {
        // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request-line.
        var result = Heads.Parse(prefix + Heads.Minimal);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(prefix.Length + Heads.Minimal.Length, result.HeadLength);
    }

    [Theory]
    [InlineData("CONNECT origin.test:443 HTTP/1.1\nHost: origin.test:443\n\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\n\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.1\nHost: origin.test:443\r\n\n")]
    public void Bare_LF_ends_a_line(string head)
    {
        // RFC 9112 §2.2: a recipient MAY recognize a single LF as a line terminator; Passage does.
        var result = Heads.Parse(head);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(head.Length, result.HeadLength);
        Assert.Equal("origin.test:443", result.Request!.HostHeader);
    }

    [Fact]
    public async Task Bytes_after_the_head_are_left_for_the_tunnel()
    {
        // A client may send its TLS ClientHello right behind the CONNECT, before the 200.
        var head = (await ConnectHeadCapture.GetAsync(HeadSource.Curl)).Bytes;
        byte[] hello = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03, (byte)'\r', (byte)'\n', (byte)'\r', (byte)'\n'];
        var buffered = head.Concat(hello).ToArray();

        var result = Heads.Parse(buffered);

        Assert.Equal(Http1ParseStatus.Complete, result.Status);
        Assert.Equal(head.Length, result.HeadLength);
        Assert.Equal(hello, buffered[(int)result.HeadLength..]);
    }

    [Fact]
    public void A_second_request_after_the_head_is_tunnel_data_too()
    {
        const string Next = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";

        var result = Heads.Parse(Heads.Minimal + Next);

        Assert.Equal(Heads.Minimal.Length, result.HeadLength);
    }

    [Fact]
    public void The_credential_stays_out_of_ToString()
    {
        var bytes = Heads.Bytes("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic c2VjcmV0\r\n\r\n");
        var result = Heads.Parse(bytes);
        var request = result.Request!;

        Assert.Equal("Basic c2VjcmV0", Heads.ProxyAuthorization(bytes, request));
        Assert.DoesNotContain("c2VjcmV0", result.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0", request.ToString(), StringComparison.Ordinal);
    }
}
