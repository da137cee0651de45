using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>Graceful stop: the first SIGTERM lets requests in flight finish; a second one stops at once.</summary>
public sealed class TunnelStopTests
{
    [Fact]
    public async Task The_first_SIGTERM_lets_a_request_in_flight_finish_and_takes_no_new_ones()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var client = pair.CreateHttpClient();
        // /slow sends "first;", waits 2 s, then "second".
        using var response = await client.GetAsync("/slow", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        await using var body = await response.Content.ReadAsStreamAsync();
        var first = new byte[6];
        await body.ReadExactlyAsync(first).AsTask().WaitAsync(Timeouts.Default);

        pair.Client.Signal();
        await pair.Client.WaitForLineAsync(l => l.Contains("stopping", StringComparison.Ordinal));
        // The listener closes just after that line is written: new connections are refused promptly.
        var refused = false;
        for (var attempt = 0; attempt < 50 && !refused; attempt++)
        {
            using var fresh = new HttpClient();
            try
            {
                using var _ = await fresh.GetAsync(pair.BaseAddress).WaitAsync(Timeouts.Default);
                await Task.Delay(100);
            }
            catch (HttpRequestException)
            {
                refused = true;
            }
        }
        Assert.True(refused, "new requests were still taken after the first SIGTERM");

        using var reader = new StreamReader(body);
        Assert.Equal("second", await reader.ReadToEndAsync().WaitAsync(Timeouts.Default));
        await pair.Client.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, pair.Client.ExitCode);
    }

    /// <summary>
    /// A request in flight gets the whole drain timeout, here past 30 s: the Kestrel host's own stop limit (30 s of the
    /// wall clock by default) used to cut it at 30 s, whatever <c>system.drainTimeout</c> said.
    /// </summary>
    [Fact]
    public async Task A_request_in_flight_may_outlast_the_hosts_own_30_s_when_the_drain_timeout_is_longer()
    {
        await using var pair = await TunnelPair.StartAsync(system: "\"drainTimeout\": \"2m\"");
        using var client = pair.CreateHttpClient();
        client.Timeout = TimeSpan.FromMinutes(2);
        using var response = await client.GetAsync("/slow?seconds=33", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        await using var body = await response.Content.ReadAsStreamAsync();
        var first = new byte[6];
        await body.ReadExactlyAsync(first).AsTask().WaitAsync(Timeouts.Default);

        pair.Client.Signal();
        await pair.Client.WaitForLineAsync(l => l.Contains("stopping", StringComparison.Ordinal));
        using var reader = new StreamReader(body);
        Assert.Equal("second", await reader.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(90)));
        await pair.Client.WaitForExitAsync(Timeouts.Default);
        Assert.Equal(0, pair.Client.ExitCode);
    }

    [Fact]
    public async Task A_second_SIGTERM_stops_at_once()
    {
        await using var pair = await TunnelPair.StartAsync();
        using var client = pair.CreateHttpClient();
        using var response = await client.GetAsync("/bytes/1000000000", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        pair.Server.Signal();
        await pair.Server.WaitForLineAsync(l => l.Contains("stopping", StringComparison.Ordinal));
        pair.Server.Signal();
        // The drain timeout is 10 s; the second signal must not wait for it.
        await pair.Server.WaitForExitAsync(TimeSpan.FromSeconds(5));
        Assert.Equal(0, pair.Server.ExitCode);
    }
}
