using Passage.Relay;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>Every class of refusal the head reader gives, with the status the relay answers it with.</summary>
public sealed class Http1ConnectParserErrorTests
{
    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n")]
    [InlineData("GET http://origin.test/ HTTP/1.1\r\n")]
    [InlineData("connect origin.test:443 HTTP/1.1\r\n")]
    [InlineData("Connect origin.test:443 HTTP/1.1\r\n")]
    [InlineData("POST origin.test:443 HTTP/1.0\r\n")]
    [InlineData("PRI * HTTP/1.1\r\n")]
    [InlineData("CONNECT-UDP origin.test:443 HTTP/1.1\r\n")]
    public void Other_methods_are_not_allowed(string head)
    {
        // RFC 9110 §9.1: method names are case-sensitive; decided on the request line alone.
        var refusal = Heads.Refusal(head);

        Assert.Equal(RefusalReason.MethodNotAllowed, refusal.Reason);
        Assert.Equal(405, refusal.Reason.StatusCode());
    }

    [Theory]
    [InlineData("CONNECT origin.test:443 HTTP/2.0\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/3\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/2\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/0.9\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.2\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/9.9\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    [InlineData("GET / HTTP/2.0\r\n")]
    public void Other_versions_are_not_supported(string head)
    {
        var refusal = Heads.Refusal(head);

        Assert.Equal(RefusalReason.UnsupportedVersion, refusal.Reason);
        Assert.Equal(505, refusal.Reason.StatusCode());
    }

    [Theory]
    [InlineData("CONNECT origin.test:443 http/1.1\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.1 \r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.10\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/11\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/1.x\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP/\r\n")]
    [InlineData("CONNECT origin.test:443 HTTP\r\n")]
    [InlineData("CONNECT origin.test:443 ICAP/1.0\r\n")]
    [InlineData("CONNECT origin.test:443\r\n")]
    [InlineData("CONNECT origin.test:443 \r\n")]
    [InlineData("CONNECT\r\n")]
    [InlineData("CONNECT  origin.test:443 HTTP/1.1\r\n")]
    [InlineData("CONNECT origin.test:443  HTTP/1.1\r\n")]
    [InlineData("CONNECT\torigin.test:443 HTTP/1.1\r\n")]
    [InlineData(" CONNECT origin.test:443 HTTP/1.1\r\n")]
    [InlineData("\tCONNECT origin.test:443 HTTP/1.1\r\n")]
    [InlineData("CONN(ECT origin.test:443 HTTP/1.1\r\n")]
    [InlineData("CONNECT origin.te\u00e9st:443 HTTP/1.1\r\n")]
    [InlineData("CONNECT origin.test:443\u0000 HTTP/1.1\r\n")]
    public void Garbled_request_lines_are_malformed(string head)
    {
        var refusal = Heads.Refusal(head);

        Assert.Equal(RefusalReason.MalformedRequest, refusal.Reason);
        Assert.Equal(400, refusal.Reason.StatusCode());
    }

    [Theory]
    [InlineData("origin.test")]
    [InlineData("origin.test:")]
    [InlineData(":443")]
    [InlineData("origin.test:0")]
    [InlineData("origin.test:65536")]
    [InlineData("origin.test:99999")]
    [InlineData("origin.test:123456")]
    [InlineData("origin.test:+443")]
    [InlineData("origin.test:-1")]
    [InlineData("origin.test:44 3")]
    [InlineData("origin.test:443/")]
    [InlineData("origin.test:443/path")]
    [InlineData("origin.test/:443")]
    [InlineData("https://origin.test:443")]
    [InlineData("/")]
    [InlineData("*")]
    [InlineData("user@origin.test:443")]
    [InlineData("user:pw@origin.test:443")]
    [InlineData("origin%2Etest:443")]
    [InlineData("origin.test:443?q")]
    [InlineData("origin.test:443#f")]
    [InlineData("::1:443")]
    [InlineData("[::1]")]
    [InlineData("[::1]443")]
    [InlineData("[::1]:")]
    [InlineData("[::1:443")]
    [InlineData("[]:443")]
    [InlineData("[:]:443")]
    [InlineData("[127.0.0.1]:443")]
    [InlineData("[fe80::1%25eth0]:443")]
    [InlineData("[v1.fe80::a]:443")]
    [InlineData("[::1]]:443")]
    [InlineData("[[::1]]:443")]
    [InlineData("origin.test:443:443")]
    public void Targets_not_in_authority_form_are_malformed(string target)
    {
        // RFC 9112 §3.2.3: authority-form = uri-host ":" port, nothing else.
        var refusal = Heads.Refusal($"CONNECT {target} HTTP/1.1\r\n\r\n");

        Assert.Equal(RefusalReason.MalformedRequest, refusal.Reason);
    }

    [Theory]
    [InlineData("https://origin.test:443", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:443/path", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:443?q", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:443#f", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:443:443", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:x@other.test:443", "request target is not in authority-form (host:port)")]
    [InlineData("origin.test:65536", "request target port is not a number from 1 to 65535")]
    [InlineData("origin.test:+443", "request target port is not a number from 1 to 65535")]
    [InlineData("origin.test:https", "request target port is not a number from 1 to 65535")]
    public void A_uri_sent_for_an_authority_is_said_to_be_one_and_a_bad_port_a_bad_port(string target, string detail)
    {
        // "https://origin.test:443" used to be answered "port is not a number", its port being "//origin.test:443".
        Assert.Equal(detail, Heads.Refusal($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n").Detail);
    }

    [Fact]
    public void Overlong_host_is_malformed()
    {
        Assert.Equal(Http1ParseStatus.Complete, Heads.Parse($"CONNECT {new string('a', 254)}:443 HTTP/1.0\r\n\r\n").Status);
        Assert.Equal(RefusalReason.MalformedRequest, Heads.Refusal($"CONNECT {new string('a', 255)}:443 HTTP/1.1\r\n\r\n").Reason);
    }

    [Theory]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\n Host: a.test\r\n\r\n", "whitespace before the first header field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: 1\r\n  continued\r\n\r\n", "obsolete line folding in a header field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: 1\r\n\tcontinued\r\n\r\n", "obsolete line folding in a header field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost : a.test\r\n\r\n", "whitespace between a header field name and the colon")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost\t: a.test\r\n\r\n", "whitespace between a header field name and the colon")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX Y: 1\r\n\r\n", "header field name is not a token")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX(Y): 1\r\n\r\n", "header field name is not a token")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-\u00e9: 1\r\n\r\n", "header field name is not a token")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\n: 1\r\n\r\n", "empty header field name")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nNoColon\r\n\r\n", "header field line without a colon")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: a\u0000b\r\n\r\n", "control character in a header field value")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: a\u001bb\r\n\r\n", "control character in a header field value")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: a\u007fb\r\n\r\n", "control character in a header field value")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: a\u000bb\r\n\r\n", "control character in a header field value")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: a\rb\r\n\r\n", "bare CR in a header field line")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: 1\r\r\n\r\n", "bare CR in a header field line")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nX-A: 1\r\n\r\r\n", "bare CR in a header field line")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\r\n\r\n", "bare CR in the request line")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\rX-A: 1\r\n\r\n", "bare CR in the request line")]
    [InlineData("\rCONNECT a.test:443 HTTP/1.1\r\n\r\n", "bare CR in the request line")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: Basic a\r\nproxy-authorization: Basic b\r\n\r\n", "more than one Proxy-Authorization field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: Basic a\r\nProxy-Authorization: Basic a\r\n\r\n", "more than one Proxy-Authorization field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nHOST: a.test:443\r\n\r\n", "more than one Host field")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello", "content on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 0, 0\r\n\r\n", "content on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nContent-Length:\r\n\r\n", "content on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nContent-Length: -0\r\n\r\n", "content on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer-Encoding on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\ntransfer-encoding: identity\r\n\r\n", "Transfer-Encoding on a CONNECT request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\n\r\n", "no Host field in an HTTP/1.1 request")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: Basic a\r\n\r\n", "no Host field in an HTTP/1.1 request")]
    public void Broken_header_sections_are_malformed(string head, string detail)
    {
        var refusal = Heads.Refusal(head);

        Assert.Equal(RefusalReason.MalformedRequest, refusal.Reason);
        Assert.Equal(detail, refusal.Detail);
    }

    [Theory]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost: A.Test:443\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n")]
    [InlineData("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:DB8::1]:8443\r\n\r\n")]
    [InlineData("CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: 2001:db8::1:8443\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost: relay.test:8443\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.1\r\nHost:\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.0\r\nHost: b.test:443\r\n\r\n")]
    [InlineData("CONNECT a.test:443 HTTP/1.0\r\n\r\n")]
    public void Any_Host_field_is_accepted_and_HTTP10_may_leave_it_out(string head)
    {
        // What curl, browsers, .NET and OkHttp send (host:port), Node's fetch (no port), Python's http.client (an IPv6
        // target unbracketed), Node's http.request (the proxy's own address); the target alone names the destination.
        var parsed = Heads.Parse(head);
        Assert.Equal(Http1ParseStatus.Complete, parsed.Status);
        Assert.Equal(head.Contains("[2001", StringComparison.Ordinal) ? "2001:db8::1" : "a.test", parsed.Request!.Host);
    }

    [Theory]
    [InlineData("Content-Length: 0")]
    [InlineData("Content-Length: 000")]
    [InlineData("content-length:0")]
    public void Content_length_zero_is_no_content(string field)
    {
        var head = $"CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n{field}\r\n{field}\r\n\r\n";

        Assert.Equal(Http1ParseStatus.Complete, Heads.Parse(head).Status);
    }

    [Fact]
    public void Errors_are_decided_as_soon_as_the_line_is_complete()
    {
        // Neither the rest of the head nor its empty line is needed to refuse.
        Assert.Equal(RefusalReason.MethodNotAllowed, Heads.Refusal("GET / HTTP/1.1\r\n").Reason);
        Assert.Equal(RefusalReason.MalformedRequest, Heads.Refusal("CONNECT a.test:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n").Reason);
        Assert.Equal(RefusalReason.MalformedRequest, Heads.Refusal("CONNECT a.test:443 HTTP/1.1\r\nX-A: 1\r\n folded").Reason);
    }

    [Theory]
    [InlineData(new byte[] { 0x16 })]
    [InlineData(new byte[] { 0x16, 0x03, 0x01 })]
    [InlineData(new byte[] { 0x00 })]
    [InlineData(new byte[] { (byte)'C', (byte)'O', 0x80 })]
    [InlineData(new byte[] { (byte)' ' })]
    [InlineData(new byte[] { (byte)'(' })]
    [InlineData(new byte[] { (byte)'\r', (byte)'x' })]
    [InlineData(new byte[] { (byte)'C', (byte)'\r', (byte)'C' })]
    public void Bytes_that_cannot_start_a_request_are_refused_before_the_line_ends(byte[] bytes)
    {
        // A TLS ClientHello sent to a plain-text port is answered at once instead of waiting for a line end.
        var result = Heads.Parse(bytes);

        Assert.Equal(Http1ParseStatus.Error, result.Status);
        Assert.Equal(RefusalReason.MalformedRequest, result.Refusal);
    }

    [Fact]
    public void Details_never_echo_the_client()
    {
        const string Marker = "ZQXJ";
        string[] heads =
        [
            $"{Marker} / HTTP/1.1\r\n",
            $"CONNECT {Marker}:x HTTP/1.1\r\n",
            $"CONNECT a.test:443 HTTP/{Marker}\r\n",
            $"CONNECT a.test:443 HTTP/1.1\r\n{Marker} : 1\r\n",
            $"CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: {Marker}\r\nProxy-Authorization: {Marker}\r\n",
        ];
        foreach (var head in heads)
        {
            var refusal = Heads.Refusal(head);
            Assert.DoesNotContain(Marker, refusal.Detail, StringComparison.OrdinalIgnoreCase);
        }
    }
}
