using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>The session across the loss of the server end: 503 with Proxy-Status while it is gone, then back without a restart.</summary>
public sealed class TunnelReconnectTests
{
    [Fact]
    public async Task Killing_the_server_end_gives_503_with_Proxy_Status_then_the_tunnel_comes_back_by_itself()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var client = pair.CreateHttpClient();
        Assert.Equal("GET /before", await client.GetStringAsync("/before").WaitAsync(Timeouts.Default));

        await pair.KillServerAsync();
        await pair.Client.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
        using (var down = await client.GetAsync("/while-down").WaitAsync(Timeouts.Default))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, down.StatusCode);
            var status = Assert.Single(down.Headers.GetValues("Proxy-Status"));
            Assert.Matches("^passage; error=(connection_refused|connection_terminated); details=\"tunnel down: .+\"$", status);
        }

        var upLines = pair.Client.CountLines("tunnel up");
        pair.ReplaceServer(pair.StartServer());
        await pair.Server.WaitForListeningPortAsync();
        // Back by itself: no restart of the client end, no request needed to wake it.
        await pair.Client.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal) && pair.Client.CountLines("tunnel up") > upLines);
        Assert.Equal("GET /after", await client.GetStringAsync("/after").WaitAsync(Timeouts.Default));
    }
}
