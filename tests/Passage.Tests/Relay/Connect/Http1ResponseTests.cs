using System.Buffers;
using System.Net;
using System.Text;
using Passage.Relay;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>The response heads, byte for byte (RFC 9110 §9.3.6, §15; RFC 9209).</summary>
public sealed class Http1ResponseTests
{
    [Fact]
    public void Established_opens_the_tunnel_without_framing_fields()
    {
        Assert.Equal("HTTP/1.1 200 Connection established\r\n\r\n", Encoding.ASCII.GetString(Http1Response.Established(HttpVersion.Version11).Span));

        // RFC 9110 §6.2: an HTTP/1.0 request is answered in the highest 1.x version the server speaks.
        Assert.Equal("HTTP/1.1 200 Connection established\r\n\r\n", Encoding.ASCII.GetString(Http1Response.Established(HttpVersion.Version10).Span));
    }

    [Fact]
    public void Established_for_another_version_is_a_caller_bug()
    {
        Assert.Throws<ArgumentException>(() => Http1Response.Established(HttpVersion.Version20));
    }

    [Fact]
    public void Destination_prohibited()
    {
        Assert.Equal(
            "HTTP/1.1 403 Forbidden\r\n" +
            "Proxy-Status: passage; error=destination_ip_prohibited; details=\"address is private\"\r\n" +
            "Connection: close\r\n" +
            "Content-Length: 0\r\n" +
            "\r\n",
            Write(o => Http1Response.Error(o, RefusalReason.DestinationProhibited, "address is private")));
    }

    [Fact]
    public void Method_not_allowed_names_the_allowed_method()
    {
        Assert.Equal(
            "HTTP/1.1 405 Method Not Allowed\r\n" +
            "Proxy-Status: passage; error=http_request_denied; details=\"only CONNECT is allowed\"\r\n" +
            "Allow: CONNECT\r\n" +
            "Connection: close\r\n" +
            "Content-Length: 0\r\n" +
            "\r\n",
            Write(o => Http1Response.Error(o, RefusalReason.MethodNotAllowed, "only CONNECT is allowed")));
    }

    [Fact]
    public void Authentication_required_challenges()
    {
        Assert.Equal(
            "HTTP/1.1 407 Proxy Authentication Required\r\n" +
            "Proxy-Status: relay-a; error=http_request_denied\r\n" +
            "Proxy-Authenticate: Bearer realm=\"passage\", Basic realm=\"passage\"\r\n" +
            "Connection: close\r\n" +
            "Content-Length: 0\r\n" +
            "\r\n",
            Write(o => Http1Response.Error(o, RefusalReason.AuthenticationRequired, null, "relay-a")));
        Assert.Contains(Passage.Relay.Auth.ProxyAuthenticator.Challenge, Write(o => Http1Response.Error(o, RefusalReason.AuthenticationRequired, null)), StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_version_and_oversized_head()
    {
        Assert.StartsWith(
            "HTTP/1.1 505 HTTP Version Not Supported\r\nProxy-Status: passage; error=http_protocol_error;",
            Write(o => Http1Response.Error(o, RefusalReason.UnsupportedVersion, "x")));
        Assert.StartsWith(
            "HTTP/1.1 431 Request Header Fields Too Large\r\nProxy-Status: passage; error=http_request_error;",
            Write(o => Http1Response.Error(o, RefusalReason.HeadTooLarge, "x")));
    }

    [Fact]
    public void Every_answered_reason_gives_one_well_formed_head()
    {
        foreach (var reason in Enum.GetValues<RefusalReason>().Where(r => r.HasHttpAnswer()))
        {
            var text = Write(o => Http1Response.Error(o, reason, "detail \"quoted\"\r\ninjected: yes"));

            Assert.StartsWith($"HTTP/1.1 {reason.StatusCode()} ", text);
            Assert.EndsWith("\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", text);
            Assert.Equal(text.Length - 4, text.IndexOf("\r\n\r\n", StringComparison.Ordinal));
            Assert.Contains($"\r\nProxy-Status: passage; error={reason.ProxyStatusErrorType()}; details=\"detail \\\"quoted\\\"??injected: yes\"\r\n", text, StringComparison.Ordinal);
            Assert.DoesNotContain("\r\ninjected", text, StringComparison.Ordinal);
            Assert.Equal(reason == RefusalReason.MethodNotAllowed, text.Contains("\r\nAllow: CONNECT\r\n", StringComparison.Ordinal));
            Assert.Equal(reason == RefusalReason.AuthenticationRequired, text.Contains("\r\nProxy-Authenticate: ", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Reasons_without_an_http_answer_are_a_caller_bug()
    {
        Assert.Throws<ArgumentException>(() => Http1Response.Error(new ArrayBufferWriter<byte>(), RefusalReason.NotTls, null));
    }

    [Fact]
    public void The_parser_verdicts_round_trip_into_answers()
    {
        // What the relay will do: parse, and on an error answer with the parser's reason and detail.
        var result = Heads.Parse("GET / HTTP/1.1\r\n\r\n");

        var text = Write(o => Http1Response.Error(o, result.Refusal!.Value, result.Detail));

        Assert.StartsWith("HTTP/1.1 405 Method Not Allowed\r\nProxy-Status: passage; error=http_request_denied; details=\"only CONNECT is allowed\"\r\n", text);
    }

    private static string Write(Action<ArrayBufferWriter<byte>> write)
    {
        var output = new ArrayBufferWriter<byte>();
        write(output);
        var bytes = output.WrittenSpan;
        Assert.True(Ascii.IsValid(bytes));
        return Encoding.ASCII.GetString(bytes);
    }
}
