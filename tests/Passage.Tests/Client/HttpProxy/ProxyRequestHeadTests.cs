using System.Text;
using Passage.Client.HttpProxy;
using Passage.Relay;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>Request heads the local HTTP proxy forwards, and those it refuses because an origin could frame them otherwise.</summary>
public sealed class ProxyRequestHeadTests
{
    [Theory]
    [InlineData("Content-Length: 3\r\nConnection: Content-Length", "Connection names")]
    [InlineData("Transfer-Encoding: chunked\r\nConnection: close, Transfer-Encoding", "Connection names")]
    [InlineData("Connection: Host", "Connection names")]
    [InlineData("Transfer-Encoding:\r\nContent-Length: 3", "both Content-Length and Transfer-Encoding")]
    [InlineData("Transfer-Encoding: ,", "does not end in chunked")]
    [InlineData("Transfer-Encoding: chunked, gzip", "does not end in chunked")]
    [InlineData("Transfer-Encoding: chunked, chunked", "does not end in chunked")]
    [InlineData("Content-Length: 3, 4", "Content-Length")]
    [InlineData("Content-Length: +3", "Content-Length")]
    [InlineData("Content-Length: 3\r\nContent-Length: 4", "Content-Length")]
    [InlineData("X-A: a\u0001b", "malformed header")]
    [InlineData("X A: b", "malformed header")]
    [InlineData(" X-A: b", "malformed header")]
    public void A_head_whose_framing_an_origin_could_read_otherwise_is_refused(string fields, string error)
    {
        Assert.Null(Parse($"POST http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\n{fields}\r\n\r\n", out var why));
        Assert.Contains(error, why);
    }

    /// <summary>
    /// RFC 9110 §7.6.2: OPTIONS and TRACE heed Max-Forwards, which each intermediary decrements (at 0 this proxy answers
    /// itself); every other method ignores it, and so does a value that is not one number: it goes on unchanged.
    /// </summary>
    [Theory]
    [InlineData("OPTIONS", "Max-Forwards: 5", 5L, "Max-Forwards: 4")]
    [InlineData("TRACE", "max-forwards: 1", 1L, "max-forwards: 0")]
    [InlineData("OPTIONS", "Max-Forwards: 0", 0L, null)]
    [InlineData("OPTIONS", "Max-Forwards: 999999999999999999", 999999999999999999L, "Max-Forwards: 999999999999999998")]
    [InlineData("OPTIONS", "Max-Forwards: 9999999999999999999", 999999999999999999L, "Max-Forwards: 999999999999999998")]
    [InlineData("OPTIONS", "Max-Forwards: -1", null, "Max-Forwards: -1")]
    [InlineData("TRACE", "Max-Forwards: 1\r\nMax-Forwards: 1", null, "Max-Forwards: 1\r\nMax-Forwards: 1")]
    [InlineData("GET", "Max-Forwards: 0", null, "Max-Forwards: 0")]
    [InlineData("POST", "Max-Forwards: 3", null, "Max-Forwards: 3")]
    public void Max_forwards_is_heeded_by_options_and_trace_alone_and_decremented(string method, string field, long? maxForwards, string? forwarded)
    {
        var head = Parse($"{method} http://origin.test/ HTTP/1.1\r\n{field}\r\n\r\n", out var why);
        Assert.True(head is not null, why);
        Assert.Equal(maxForwards, head.MaxForwards);
        if (forwarded is not null)
        {
            Assert.Contains($"\r\n{forwarded}\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
        }
    }

    /// <summary>
    /// Max-Forwards is read for every request this proxy serves: for a method that ignores it (all but OPTIONS and TRACE),
    /// reading it allocates nothing, whatever fields the head has.
    /// </summary>
    /// <summary>
    /// A field value's bytes beyond ASCII are opaque (RFC 9110 §5.5): UTF-8 (a file name in Content-Disposition), or a
    /// Latin-1 byte. They were refused 400 ("malformed header" for a character beyond U+00FF, "not text" for a byte that
    /// is not UTF-8); they go on to the origin byte for byte. Control bytes are still refused.
    /// </summary>
    [Fact]
    public void Field_values_beyond_ascii_go_on_to_the_origin_byte_for_byte()
    {
        byte[][] values = [Encoding.UTF8.GetBytes("attachment; filename=\"файл €.txt\""), [(byte)'c', (byte)'a', (byte)'f', 0xE9]];
        foreach (var value in values)
        {
            byte[] head = [.. "GET http://origin.test/ HTTP/1.1\r\nX-Name: "u8, .. value, .. "\r\n\r\n"u8];
            var parsed = ProxyRequestHead.Parse(head, out var why);
            Assert.True(parsed is not null, why);
            byte[] line = [.. "\r\nX-Name: "u8, .. value, .. "\r\n"u8];
            Assert.True(parsed.ToOriginForm().AsSpan().IndexOf(line) >= 0);
        }
        Assert.Null(ProxyRequestHead.Parse("GET http://origin.test/ HTTP/1.1\r\nX-Name: a\u0001b\r\n\r\n"u8, out var error));
        Assert.Equal("malformed header", error);
    }

    [Fact]
    public void Max_forwards_of_a_method_that_ignores_it_is_read_without_allocating()
    {
        var head = Parse("GET http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nMax-Forwards: 3\r\n\r\n", out var why);
        Assert.True(head is not null, why);
        _ = head.MaxForwards;
        var before = GC.GetAllocatedBytesForCurrentThread();
        var maxForwards = head.MaxForwards;
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Null(maxForwards);
        Assert.Equal(0, allocated);
    }

    /// <summary>
    /// This proxy's credentials are kept where they lie in the head, each field's value without its surrounding whitespace,
    /// and are no header: nothing of them is made text, nor goes on to the origin.
    /// </summary>
    [Theory]
    [InlineData("CONNECT origin.test:443 HTTP/1.1")]
    [InlineData("GET http://origin.test/ HTTP/1.1")]
    public void Proxy_authorization_values_are_kept_where_they_lie_and_are_no_header(string requestLine)
    {
        var bytes = Encoding.UTF8.GetBytes(
            $"{requestLine}\r\nProxy-Authorization: \t Basic YTpi \t\r\nHost: origin.test\r\nproxy-authorization:Bearer \u00e9\r\nPROXY-AUTHORIZATION:\r\n\r\n");
        var head = ProxyRequestHead.Parse(bytes, out var why);
        Assert.True(head is not null, why);
        Assert.Equal([("Host", "origin.test")], head.Headers);
        Assert.Equal(["Basic YTpi", "Bearer \u00e9", ""], head.Credentials.Select(r => Encoding.UTF8.GetString(bytes.AsSpan(r))));
        Assert.DoesNotContain("YTpi", Encoding.UTF8.GetString(head.ToOriginForm()));
    }

    /// <summary>
    /// Nothing of the credentials is copied, into a string or otherwise: a head allocates the same whatever its
    /// Proxy-Authorization value's length.
    /// </summary>
    [Fact]
    public void Parsing_allocates_the_same_whatever_the_credentials_length()
    {
        long Allocated(int length)
        {
            var head = Encoding.ASCII.GetBytes($"GET http://origin.test/ HTTP/1.1\r\nProxy-Authorization: Basic {new string('A', length)}\r\n\r\n");
            ProxyRequestHead.Parse(head, out _);
            var before = GC.GetAllocatedBytesForCurrentThread();
            var parsed = ProxyRequestHead.Parse(head, out _);
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Single(parsed!.Credentials);
            return allocated;
        }

        Assert.Equal(Allocated(4), Allocated(1000));
    }

    /// <summary>A Proxy-Authorization value is held to what any field value is: no control character, nothing past Latin-1.</summary>
    [Theory]
    [InlineData("Basic YTpi\u0001")]
    [InlineData("Basic YTpi\u007f")]
    [InlineData("Basic \u0100")]
    [InlineData("Basic \U0001F600")]
    public void A_proxy_authorization_value_no_field_value_may_hold_is_refused(string value)
    {
        Assert.Null(ProxyRequestHead.Parse(Encoding.UTF8.GetBytes($"GET http://origin.test/ HTTP/1.1\r\nProxy-Authorization: {value}\r\n\r\n"), out var why));
        Assert.Equal("malformed header", why);
    }

    [Theory]
    [InlineData("HTTP/1.2", RefusalReason.UnsupportedVersion)]
    [InlineData("HTTP/2.0", RefusalReason.UnsupportedVersion)]
    [InlineData("HTTP/1.1x", RefusalReason.MalformedRequest)]
    [InlineData("HTTP/1.", RefusalReason.MalformedRequest)]
    [InlineData("http/1.1", RefusalReason.MalformedRequest)]
    public void A_version_other_than_1_0_and_1_1_is_refused_as_the_relay_refuses_it(string version, RefusalReason expected)
    {
        Assert.Null(ProxyRequestHead.Parse(Encoding.ASCII.GetBytes($"GET http://origin.test/ {version}\r\n\r\n"), out var reason, out var why));
        Assert.Equal(expected, reason);
        Assert.NotNull(why);
    }

    [Theory]
    [InlineData("OPTIONS http://origin.test:8080 HTTP/1.1", "OPTIONS * HTTP/1.1")]
    [InlineData("OPTIONS http://origin.test:8080/ HTTP/1.1", "OPTIONS / HTTP/1.1")]
    [InlineData("OPTIONS http://origin.test:8080?q HTTP/1.1", "OPTIONS /?q HTTP/1.1")]
    [InlineData("GET http://origin.test:8080 HTTP/1.1", "GET / HTTP/1.1")]
    [InlineData("OPTIONS http://origin.test:8080 HTTP/1.0", "OPTIONS * HTTP/1.1")]
    public void An_options_request_for_an_empty_path_asks_about_the_server_as_a_whole(string requestLine, string originLine)
    {
        // RFC 9112 §3.2.4: the last proxy sends OPTIONS with an empty path and no query as "OPTIONS *".
        var head = Parse($"{requestLine}\r\n\r\n", out var why);
        Assert.True(head is not null, why);
        Assert.StartsWith(originLine + "\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    [Fact]
    public void Transfer_encoding_in_an_http_1_0_request_is_refused()
    {
        Assert.Null(Parse("POST http://origin.test/ HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", out var why));
        Assert.Contains("HTTP/1.0", why);
    }

    [Fact]
    public void Content_length_given_twice_with_one_value_goes_on_once()
    {
        var head = Parse("POST http://origin.test:8080/a HTTP/1.1\r\nContent-Length: 5, 5\r\nX-B: 1\r\nContent-Length: 5\r\nConnection: X-Drop\r\nX-Drop: 1\r\n\r\n", out _);
        Assert.NotNull(head);
        Assert.Equal(BodyFraming.Length, head.Framing);
        Assert.Equal(5, head.ContentLength);
        Assert.Equal("POST /a HTTP/1.1\r\nHost: origin.test:8080\r\nX-B: 1\r\nContent-Length: 5\r\nConnection: close\r\n\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    [Fact]
    public void A_chunked_request_goes_on_chunked()
    {
        var head = Parse("POST http://origin.test/ HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", out _);
        Assert.NotNull(head);
        Assert.Equal(BodyFraming.Chunked, head.Framing);
        Assert.Contains("\r\nTransfer-Encoding: gzip, chunked\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    /// <summary>
    /// RFC 9110 §10.1.4: TE is this hop's, but an application that accepts trailers has the proxy, which passes them on,
    /// ask the origin for them (gRPC needs it), named in Connection; any other TE member, or one from an HTTP/1.0
    /// application (which gets no trailer section), asks nothing.
    /// </summary>
    [Theory]
    [InlineData("HTTP/1.1", "TE: trailers", true)]
    [InlineData("HTTP/1.1", "te: gzip;q=0.5 ,Trailers\r\nConnection: TE", true)]
    [InlineData("HTTP/1.1", "TE: gzip\r\nTE: trailers", true)]
    [InlineData("HTTP/1.1", "TE: xtrailersx, gzip", false)]
    [InlineData("HTTP/1.1", "X-TE: trailers", false)]
    [InlineData("HTTP/1.0", "TE: trailers", false)]
    public void An_application_that_accepts_trailers_has_the_origin_asked_for_them(string version, string fields, bool asked)
    {
        var head = Parse($"GET http://origin.test/ {version}\r\n{fields}\r\n\r\n", out _);
        Assert.NotNull(head);
        var sent = Encoding.ASCII.GetString(head.ToOriginForm());
        Assert.Equal(asked, head.AcceptsTrailers);
        Assert.EndsWith(asked ? "\r\nTE: trailers\r\nConnection: TE, close\r\n\r\n" : "\r\nConnection: close\r\n\r\n", sent);
        Assert.Equal(asked ? 1 : 0, sent.Split("\r\n").Count(line => line.StartsWith("TE:", StringComparison.OrdinalIgnoreCase)));
    }

    /// <summary>RFC 9110 §6.6.2: Trailer is end-to-end; it goes on with the trailer fields it announces, which the body carries on.</summary>
    [Fact]
    public void A_chunked_request_s_trailer_field_goes_on()
    {
        var head = Parse("POST http://origin.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n", out _);
        Assert.NotNull(head);
        Assert.True(head.Forwards("Trailer"));
        Assert.Equal(
            "POST / HTTP/1.1\r\nHost: origin.test\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\nConnection: close\r\n\r\n",
            Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    /// <summary>
    /// RFC 9110 §6.2: the origin is sent this proxy's version, HTTP/1.1, Host the target's authority (a 1.0 request often
    /// has none); RFC 9110 §10.1.1: a 1.0 request's 100-continue expectation is ignored, so it does not go on.
    /// </summary>
    [Theory]
    [InlineData("Expect: 100-continue\r\n", "")]
    [InlineData("Expect: 100-Continue, x-other\r\n", "Expect: x-other\r\n")]
    [InlineData("Proxy-Connection: keep-alive\r\nKeep-Alive: 5\r\n", "")]
    public void An_HTTP10_request_goes_on_in_HTTP11_with_the_host_of_its_target(string fields, string sent)
    {
        var head = Parse($"POST http://origin.test:8080/a?b HTTP/1.0\r\n{fields}Content-Length: 5\r\n\r\n", out _);
        Assert.NotNull(head);
        Assert.True(head.IsHttp10);
        Assert.Equal(
            $"POST /a?b HTTP/1.1\r\nHost: origin.test:8080\r\n{sent}Content-Length: 5\r\nConnection: close\r\n\r\n",
            Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    [Fact]
    public void An_HTTP11_request_keeps_its_100_continue_expectation()
    {
        var head = Parse("PUT http://origin.test/ HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n", out _);
        Assert.NotNull(head);
        Assert.Contains("\r\nExpect: 100-continue\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    [Theory]
    [InlineData("http://origin.test:/a", "origin.test", "/a")]
    [InlineData("http://[::1]:?q", "[::1]", "/?q")]
    public void An_empty_port_is_port_80(string target, string authority, string path)
    {
        var head = Parse($"GET {target} HTTP/1.1\r\n\r\n", out var why);
        Assert.True(head is not null, why);
        Assert.Equal(80, head.Port);
        Assert.StartsWith($"GET {path} HTTP/1.1\r\nHost: {authority}\r\n", Encoding.ASCII.GetString(head.ToOriginForm()));
    }

    [Theory]
    [InlineData("http://origin.test:80:/")]
    [InlineData("http://[::1]:80:/")]
    [InlineData("http://[::1:/")]
    public void A_colon_after_a_port_is_no_empty_port(string target) =>
        Assert.Null(Parse($"GET {target} HTTP/1.1\r\n\r\n", out _));

    /// <summary>A URL with no host (an empty authority, or a port alone) is refused, and the reason says so.</summary>
    [Theory]
    [InlineData("http:///a")]
    [InlineData("http://?q")]
    [InlineData("http://:/a")]
    [InlineData("http://:80/a")]
    public void A_url_without_a_host_is_refused_as_having_none(string target)
    {
        Assert.Null(Parse($"GET {target} HTTP/1.1\r\n\r\n", out var why));
        Assert.Equal("request target has no host", why);
    }

    /// <summary>A CONNECT target is read as the relay reads it: what the relay would refuse (or time out on) is refused here.</summary>
    [Theory]
    [InlineData("[fe80::1%25eth0]:443", "IPv6")]
    [InlineData("[fe80::1%eth0]:443", "IPv6")]
    [InlineData("user@origin.test:443", "authority-form")]
    [InlineData("origin.test", "no port")]
    [InlineData("origin.test:0", "port")]
    [InlineData("[::1]", "no port")]
    [InlineData("origin.test:443/", "port")]
    public void A_connect_target_the_relay_would_refuse_is_refused(string target, string error)
    {
        Assert.Null(Parse($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n", out var why));
        Assert.Contains(error, why);
    }

    /// <summary>
    /// RFC 9110 §9.3.6: a CONNECT has no content. One whose fields announce some is refused, as the relay refuses it: the
    /// bytes behind its head used to go into the tunnel, while an intermediary that framed them as its content would read
    /// what follows as another request. A Content-Length of zero says there is none.
    /// </summary>
    [Theory]
    [InlineData("Content-Length: 5", "content on a CONNECT request")]
    [InlineData("Content-Length: 0, 5", "content on a CONNECT request")]
    [InlineData("Content-Length:", "content on a CONNECT request")]
    [InlineData("Transfer-Encoding: chunked", "Transfer-Encoding on a CONNECT request")]
    [InlineData("transfer-encoding: identity", "Transfer-Encoding on a CONNECT request")]
    [InlineData("Content-Length: 0", null)]
    [InlineData("Content-Length: 00", null)]
    public void A_connect_whose_fields_announce_content_is_refused_as_the_relay_refuses_it(string field, string? error)
    {
        var head = Parse($"CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n{field}\r\n\r\n", out var why);
        Assert.Equal(error, why);
        Assert.Equal(error is null, head is not null);
    }

    /// <summary>
    /// RFC 9112 §3.2, as the relay answers it: a CONNECT with two Host fields, or in HTTP/1.1 with none, is refused (the
    /// proxy opened its tunnel, and the relay, asked over HTTP/1.1 alone, would have refused it); HTTP/1.0 may leave it out.
    /// </summary>
    [Theory]
    [InlineData("HTTP/1.1", "", "no Host field in an HTTP/1.1 request")]
    [InlineData("HTTP/1.1", "Host: a.test:443\r\nhost: b.test:443\r\n", "more than one Host field")]
    [InlineData("HTTP/1.0", "Host: a.test:443\r\nHOST: a.test:443\r\n", "more than one Host field")]
    [InlineData("HTTP/1.0", "", null)]
    [InlineData("HTTP/1.1", "Host: anything\r\n", null)]
    public void A_connect_with_two_host_fields_or_none_in_http11_is_refused_as_the_relay_refuses_it(string version, string fields, string? error)
    {
        var head = Parse($"CONNECT a.test:443 {version}\r\n{fields}\r\n", out var why);
        Assert.Equal(error, why);
        Assert.Equal(error is null, head is not null);
    }

    [Theory]
    [InlineData("Origin.Test.:443", "origin.test", 443)]
    [InlineData("[::1]:8443", "::1", 8443)]
    [InlineData("192.0.2.1:80", "192.0.2.1", 80)]
    public void A_connect_target_names_its_host_and_port(string target, string host, int port)
    {
        var head = Parse($"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n", out var why);
        Assert.True(head is not null, why);
        Assert.True(head.IsConnect);
        Assert.Equal((host, port), (head.Host, head.Port));
    }

    private static ProxyRequestHead? Parse(string head, out string? error) => ProxyRequestHead.Parse(Encoding.Latin1.GetBytes(head), out error);
}
