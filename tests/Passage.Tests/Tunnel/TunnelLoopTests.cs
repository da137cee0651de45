using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>A tunnel whose backend is, by mistake, its own client end: the request is stopped where it comes round.</summary>
public sealed class TunnelLoopTests
{
    [Fact]
    public async Task A_request_that_comes_round_to_the_client_end_again_is_answered_502_with_proxy_loop_detected()
    {
        await using var pair = await TunnelPair.StartAsync();
        // The server end now sends every request on to the client end's own HTTP port.
        await pair.RestartServerAsync(TunnelPair.ServerConfig(EndTrust.Pinned(pair.ClientId, pair.ServerKey), pair.TunnelPort, pair.HttpPort, ""));

        using var client = pair.CreateHttpClient();
        using var response = await client.GetAsync("/anything").WaitAsync(Timeouts.Default);

        // The client end's answer to the request's second turn, passed back through the first as the "backend's" answer.
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var proxyStatus = string.Join(",", response.Headers.GetValues("Proxy-Status"));
        Assert.StartsWith("passage; error=proxy_loop_detected; details=\"the request came round to the client end again: its Via names passage-", proxyStatus);
        await pair.Client.WaitForLineAsync(l => l.Contains("a request came round to the client end again", StringComparison.Ordinal));
    }
}
