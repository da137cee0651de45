using Passage.Client;

namespace Passage.Tests.Client;

/// <summary>How the client reads a relay's refusal: its status and the error type of its Proxy-Status (RFC 9209).</summary>
public sealed class TunnelFailuresTests
{
    [Theory]
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
    [InlineData(500, "passage; error=proxy_internal_error", TunnelFailure.Other)]
    public void A_relay_answer_maps_to_the_failure_it_describes(int status, string? proxyStatus, TunnelFailure expected) =>
        Assert.Equal(expected, TunnelFailures.FromAnswer(status, proxyStatus));

    [Fact]
    public void Only_the_relay_s_own_failures_send_the_client_to_another_relay()
    {
        Assert.True(TunnelFailure.RelayBusy.IsRelayFault());
        Assert.False(TunnelFailure.Timeout.IsRelayFault());
        Assert.False(TunnelFailure.DnsError.IsRelayFault());
    }
}
