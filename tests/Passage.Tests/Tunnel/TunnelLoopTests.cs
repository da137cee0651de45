using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A tunnel whose backend is, by mistake, its own client end: the request is stopped where it comes round. The client end
/// does not see itself named, as the server end puts its own entry in place of the client end's; the server end does.
/// </summary>
public sealed class TunnelLoopTests
{
    [Fact]
    public async Task A_request_that_comes_round_to_the_server_end_again_is_answered_502_with_proxy_loop_detected()
    {
        await using var pair = await StartLoopAsync();

        using var client = pair.CreateHttpClient();
        using var response = await client.GetAsync("/anything").WaitAsync(Timeouts.Default);

        AssertLoopDetected(response);
        await pair.Server.WaitForLineAsync(l => l.Contains("a request came round to the server end again", StringComparison.Ordinal));
    }

    /// <summary>
    /// The application's own Via entries come first in the one field each end forwards, so a comment it leaves open would
    /// take in the ends' entries after it: the request is still stopped at its first turn, not sent round until a limit breaks.
    /// </summary>
    [Theory]
    [InlineData("1.0 upstream (a comment its sender left open")]
    [InlineData("1.0 upstream (a comment ending in an escape \\")]
    public async Task A_request_whose_Via_leaves_a_comment_open_is_still_stopped_where_it_comes_round(string via)
    {
        await using var pair = await StartLoopAsync();

        using var client = pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/anything");
        Assert.True(request.Headers.TryAddWithoutValidation("Via", via));
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);

        AssertLoopDetected(response);
    }

    /// <summary>A pair whose server end sends every request on to the client end's own HTTP port.</summary>
    private static async Task<TunnelPair> StartLoopAsync()
    {
        var pair = await TunnelPair.StartAsync();
        try
        {
            await pair.RestartServerAsync(TunnelPair.ServerConfig(EndTrust.Pinned(pair.ClientId, pair.ServerKey), pair.TunnelPort, pair.HttpPort, ""));
            return pair;
        }
        catch
        {
            await pair.DisposeAsync();
            throw;
        }
    }

    /// <summary>The server end's answer to the request's second turn, passed back through the first as the "backend's" answer.</summary>
    private static void AssertLoopDetected(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
        var proxyStatus = string.Join(",", response.Headers.GetValues("Proxy-Status"));
        Assert.StartsWith("passage; error=proxy_loop_detected; details=\"the request came round to the server end again: its Via names passage-", proxyStatus);
    }
}
