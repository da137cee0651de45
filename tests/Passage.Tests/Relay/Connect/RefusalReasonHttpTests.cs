using Passage.Relay;

namespace Passage.Tests.Relay.Connect;

/// <summary>The status code and Proxy-Status error type of every refusal (RFC 9209 §2.3).</summary>
public sealed class RefusalReasonHttpTests
{
    // Registered in the IANA HTTP Proxy Error Types registry (RFC 9209 §2.3).
    private static readonly HashSet<string> RegisteredTypes =
    [
        "dns_timeout", "dns_error", "destination_not_found", "destination_unavailable", "destination_ip_prohibited",
        "destination_ip_unroutable", "connection_refused", "connection_terminated", "connection_timeout",
        "connection_read_timeout", "connection_write_timeout", "connection_limit_reached", "tls_protocol_error",
        "tls_certificate_error", "tls_alert_received", "http_request_error", "http_request_denied",
        "http_response_incomplete", "http_response_header_section_size", "http_response_header_size",
        "http_response_body_size", "http_response_trailer_section_size", "http_response_trailer_size",
        "http_response_transfer_coding", "http_response_content_coding", "http_response_timeout",
        "http_upgrade_failed", "http_protocol_error", "proxy_internal_response", "proxy_internal_error",
        "proxy_configuration_error", "proxy_loop_detected",
    ];

    [Theory]
    [InlineData(RefusalReason.MalformedRequest, 400, "http_request_error")]
    [InlineData(RefusalReason.MethodNotAllowed, 405, "http_request_denied")]
    [InlineData(RefusalReason.UnsupportedVersion, 505, "http_protocol_error")]
    [InlineData(RefusalReason.HeadTooLarge, 431, "http_request_error")]
    [InlineData(RefusalReason.DestinationDenied, 403, "http_request_denied")]
    [InlineData(RefusalReason.AuthenticationRequired, 407, "http_request_denied")]
    [InlineData(RefusalReason.RequestHeadTimeout, 408, "http_request_error")]
    [InlineData(RefusalReason.DestinationProhibited, 403, "destination_ip_prohibited")]
    [InlineData(RefusalReason.DnsError, 502, "dns_error")]
    [InlineData(RefusalReason.UpstreamRefused, 502, "connection_refused")]
    [InlineData(RefusalReason.UpstreamTimeout, 504, "connection_timeout")]
    [InlineData(RefusalReason.DnsTimeout, 504, "dns_timeout")]
    [InlineData(RefusalReason.UpstreamUnreachable, 502, "destination_ip_unroutable")]
    [InlineData(RefusalReason.ConnectionLimit, 503, "connection_limit_reached")]
    [InlineData(RefusalReason.InvalidDestination, 400, "http_request_error")]
    [InlineData(RefusalReason.NoRoute, 502, "destination_not_found")]
    [InlineData(RefusalReason.ShuttingDown, 503, "proxy_internal_response")]
    [InlineData(RefusalReason.RelayUnavailable, 503, "destination_unavailable")]
    [InlineData(RefusalReason.RelayKeyMismatch, 503, "tls_certificate_error")]
    [InlineData(RefusalReason.RelayError, 502, "http_protocol_error")]
    [InlineData(RefusalReason.OriginNoAnswer, 502, "http_response_incomplete")]
    [InlineData(RefusalReason.OriginAnswerTooLarge, 502, "http_response_header_section_size")]
    [InlineData(RefusalReason.OriginBadAnswer, 502, "http_protocol_error")]
    public void Answered_reasons(RefusalReason reason, int status, string errorType)
    {
        Assert.True(reason.HasHttpAnswer());
        Assert.Equal(status, reason.StatusCode());
        Assert.Equal(errorType, reason.ProxyStatusErrorType());
    }

    [Theory]
    [InlineData(RefusalReason.NotTls)]
    [InlineData(RefusalReason.ClientClosed)]
    [InlineData(RefusalReason.HandshakeTimeout)]
    [InlineData(RefusalReason.MalformedHello)]
    [InlineData(RefusalReason.HelloTooLarge)]
    [InlineData(RefusalReason.NoServerName)]
    public void Reasons_closed_without_an_answer(RefusalReason reason)
    {
        Assert.False(reason.HasHttpAnswer());
        Assert.Equal(0, reason.StatusCode());
    }

    [Fact]
    public void Every_reason_has_a_registered_error_type_and_a_distinct_metric_name()
    {
        var reasons = Enum.GetValues<RefusalReason>();
        foreach (var reason in reasons)
        {
            Assert.Contains(reason.ProxyStatusErrorType(), RegisteredTypes);
            Assert.NotEqual("other", reason.Name());
        }

        Assert.Equal(reasons.Length, reasons.Select(r => r.Name()).Distinct().Count());
    }

    [Fact]
    public void Existing_metric_names_are_unchanged()
    {
        Assert.Equal("connection_limit_reached", RefusalReason.ConnectionLimit.Name());
        Assert.Equal("destination_not_found", RefusalReason.InvalidDestination.Name());
        Assert.Equal("proxy_shutting_down", RefusalReason.ShuttingDown.Name());
        Assert.Equal("not_tls", RefusalReason.NotTls.Name());
        Assert.Equal(14, (int)RefusalReason.ShuttingDown);
    }
}
