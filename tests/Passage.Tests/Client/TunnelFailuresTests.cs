using Passage.Client;
using Passage.Relay;

namespace Passage.Tests.Client;

/// <summary>How the client reads a relay's refusal: its status and the error type of its Proxy-Status (RFC 9209).</summary>
public sealed class TunnelFailuresTests
{
    [Theory]
    [InlineData(400, "passage; error=http_request_error; details=\"malformed target\"", TunnelFailure.InvalidRequest)]
    [InlineData(400, null, TunnelFailure.InvalidRequest)]
    [InlineData(407, "passage; error=http_request_denied", TunnelFailure.AuthenticationRequired)]
    [InlineData(403, "passage; error=destination_ip_prohibited", TunnelFailure.DestinationDenied)]
    [InlineData(503, "passage; error=connection_limit_reached", TunnelFailure.RelayBusy)]
    [InlineData(504, "passage; error=connection_timeout", TunnelFailure.Timeout)]
    [InlineData(504, "passage; error=dns_timeout; details=\"lookup timed out\"", TunnelFailure.Timeout)]
    [InlineData(502, "other-proxy; error=dns_timeout", TunnelFailure.Timeout)]
    [InlineData(502, "passage; error=dns_error; details=\"HostNotFound\"", TunnelFailure.DnsError)]
    [InlineData(502, "passage; error=destination_not_found", TunnelFailure.DnsError)]
    [InlineData(502, "passage; error=connection_refused", TunnelFailure.ConnectionRefused)]
    [InlineData(502, "passage; error=destination_ip_unroutable", TunnelFailure.Unreachable)]
    [InlineData(502, "other-proxy; error=destination_unavailable", TunnelFailure.Unreachable)]
    [InlineData(502, null, TunnelFailure.Other)]
    [InlineData(500, "passage; error=proxy_internal_error", TunnelFailure.RelayError)]
    [InlineData(500, null, TunnelFailure.RelayError)]
    [InlineData(404, null, TunnelFailure.RelayError)]
    [InlineData(301, null, TunnelFailure.RelayError)]
    [InlineData(204, null, TunnelFailure.RelayError)]
    [InlineData(0, null, TunnelFailure.RelayError)]
    [InlineData(503, "other-proxy; error=connection_refused", TunnelFailure.ConnectionRefused)]
    [InlineData(503, "other-proxy; error=dns_error", TunnelFailure.DnsError)]
    [InlineData(503, "passage; error=proxy_internal_response", TunnelFailure.RelayBusy)]
    [InlineData(503, null, TunnelFailure.RelayBusy)]
    public void A_relay_answer_maps_to_the_failure_it_describes(int status, string? proxyStatus, TunnelFailure expected) =>
        Assert.Equal(expected, TunnelFailures.FromAnswer(status, proxyStatus));

    [Theory]
    [InlineData("passage; error=dns_error; details=\"HostNotFound\"", "HostNotFound")]
    [InlineData("passage; error=http_request_denied; details=\"destination not allowed by the relay's policy\"", "destination not allowed by the relay's policy")]
    [InlineData("passage; error=http_request_error; details=\"a \\\"quoted\\\" \\\\ word\"", "a \"quoted\" \\ word")]
    [InlineData("passage; details=\"first\"; error=dns_error", "first")]
    [InlineData("passage; error=dns_error", null)]
    [InlineData(null, null)]
    [InlineData("passage; error=dns_error; details=\"not closed", null)]
    [InlineData("passage; error=dns_error; details=\"bad \\x escape\"", null)]
    [InlineData("passage; error=dns_error; details=\"a\tcontrol\"", null)]
    [InlineData("passage; error=dns_error; details=token", null)]
    [InlineData("passage; error=dns_error; xdetails=\"not it\"", null)]
    [InlineData("passage; error=dns_error; xdetails=\"not it\"; details=\"it\"", "it")]
    public void A_relay_s_details_are_read_as_the_string_it_sent_or_not_at_all(string? proxyStatus, string? expected) =>
        Assert.Equal(expected, TunnelFailures.DetailsOf(proxyStatus));

    [Fact]
    public void Every_failure_has_words_for_a_person_and_an_exception_without_the_relay_s_uses_them()
    {
        foreach (var failure in Enum.GetValues<TunnelFailure>())
        {
            var words = failure.Describe();
            Assert.False(string.IsNullOrWhiteSpace(words));
            Assert.NotEqual(failure.ToString(), words);
            Assert.Equal(words, new PassageTunnelException(failure, "message").Details);
        }
        Assert.Equal("HostNotFound", new PassageTunnelException(TunnelFailure.DnsError, "message", details: "HostNotFound").Details);
    }

    [Fact]
    public void Only_the_relay_s_own_failures_send_the_client_to_another_relay()
    {
        Assert.True(TunnelFailure.RelayBusy.IsRelayFault());
        Assert.True(TunnelFailure.RelayError.IsRelayFault());
        Assert.False(TunnelFailure.Other.IsRelayFault());
        Assert.False(TunnelFailure.ConnectionRefused.IsRelayFault());
        Assert.False(TunnelFailure.Timeout.IsRelayFault());
        Assert.False(TunnelFailure.DnsError.IsRelayFault());
        Assert.False(TunnelFailure.InvalidRequest.IsRelayFault());
    }

    /// <summary>A 407 sends the client to another relay too, but it is no fault of the relay's (it stays up).</summary>
    [Fact]
    public void A_407_tries_another_relay_without_being_the_relay_s_fault()
    {
        Assert.True(TunnelFailure.AuthenticationRequired.TriesAnotherRelay());
        Assert.False(TunnelFailure.AuthenticationRequired.IsRelayFault());
        Assert.True(TunnelFailure.RelayUnavailable.TriesAnotherRelay());
        Assert.False(TunnelFailure.ConnectionRefused.TriesAnotherRelay());
        Assert.False(TunnelFailure.Other.TriesAnotherRelay());
    }

    /// <summary>
    /// The local HTTP proxy passes on what the relay said of the request and the destination; a relay it could
    /// not use is the proxy's next hop failing (503, as the tunnel's client end answers while down), never the
    /// destination being unroutable.
    /// </summary>
    [Theory]
    [InlineData(TunnelFailure.InvalidRequest, 400, "http_request_error")]
    [InlineData(TunnelFailure.DestinationDenied, 403, "http_request_denied")]
    [InlineData(TunnelFailure.DnsError, 502, "dns_error")]
    [InlineData(TunnelFailure.ConnectionRefused, 502, "connection_refused")]
    [InlineData(TunnelFailure.Unreachable, 502, "destination_ip_unroutable")]
    [InlineData(TunnelFailure.Timeout, 504, "connection_timeout")]
    [InlineData(TunnelFailure.RelayBusy, 503, "connection_limit_reached")]
    [InlineData(TunnelFailure.RelayUnavailable, 503, "destination_unavailable")]
    [InlineData(TunnelFailure.PinMismatch, 503, "tls_certificate_error")]
    [InlineData(TunnelFailure.AuthenticationRequired, 502, "http_protocol_error")]
    [InlineData(TunnelFailure.Other, 502, "http_protocol_error")]
    [InlineData(TunnelFailure.RelayError, 502, "http_protocol_error")]
    public void Each_failure_has_an_http_proxy_answer(TunnelFailure failure, int status, string errorType)
    {
        Assert.Equal(status, failure.Http().StatusCode());
        Assert.Equal(errorType, failure.Http().ProxyStatusErrorType());
    }

    [Theory]
    [InlineData(TunnelFailure.DestinationDenied, 0x02)]
    [InlineData(TunnelFailure.DnsError, 0x04)]
    [InlineData(TunnelFailure.ConnectionRefused, 0x05)]
    [InlineData(TunnelFailure.Unreachable, 0x03)]
    [InlineData(TunnelFailure.Timeout, 0x06)]
    [InlineData(TunnelFailure.InvalidRequest, 0x01)]
    [InlineData(TunnelFailure.RelayUnavailable, 0x01)]
    [InlineData(TunnelFailure.PinMismatch, 0x01)]
    [InlineData(TunnelFailure.Other, 0x01)]
    [InlineData(TunnelFailure.RelayError, 0x01)]
    public void Each_failure_has_a_socks_reply_code(TunnelFailure failure, byte code) =>
        Assert.Equal(code, (byte)failure.Socks());

    [Fact]
    public void Every_failure_has_an_answer_on_both_front_doors()
    {
        foreach (var failure in Enum.GetValues<TunnelFailure>())
        {
            Assert.True(failure.Http().HasHttpAnswer(), failure.ToString());
        }
    }
}
