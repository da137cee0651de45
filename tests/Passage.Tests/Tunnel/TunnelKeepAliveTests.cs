using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>A server end that stops answering: the client end's keep-alive ping goes unanswered, and says so.</summary>
public sealed class TunnelKeepAliveTests
{
    private const int SigStop = 19;
    private const int SigCont = 18;

    [Fact]
    public async Task A_server_end_that_answers_no_ping_takes_the_session_down_as_a_timeout_not_a_protocol_error()
    {
        await using var pair = await TunnelPair.StartAsync("""
            "transport": { "maxIdleTimeout": "2s", "keepAliveInterval": "1s" }
            """);
        using var client = pair.CreateHttpClient();
        Assert.Equal("GET /before", await client.GetStringAsync("/before").WaitAsync(Timeouts.Default));

        // Frozen, its socket open: nothing it sends, nothing refused; only the ping's answer is missing.
        pair.Server.Signal(SigStop);
        try
        {
            var down = await pair.Client.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
            Assert.Contains("tunnel down: connection_timeout: ", down, StringComparison.Ordinal);
            Assert.Contains("keep-alive ping", down, StringComparison.Ordinal);
            using var answer = await client.GetAsync("/while-frozen").WaitAsync(Timeouts.Default);
            Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
            Assert.StartsWith("passage; error=connection_timeout; ", Assert.Single(answer.Headers.GetValues("Proxy-Status")), StringComparison.Ordinal);
        }
        finally
        {
            pair.Server.Signal(SigCont);
        }
    }

    [Fact]
    public async Task A_request_in_flight_when_the_ping_goes_unanswered_is_told_the_same_timeout()
    {
        await using var pair = await TunnelPair.StartAsync("""
            "transport": { "maxIdleTimeout": "4s", "keepAliveInterval": "1s" }
            """);
        using var client = pair.CreateHttpClient();
        // The backend holds its answer: once it has the request, the request is in flight on the session.
        var before = Volatile.Read(ref pair.Backend.Requests);
        var pending = client.GetAsync("/silent");
        while (Volatile.Read(ref pair.Backend.Requests) == before)
        {
            Assert.False(pending.IsCompleted, "answered before the backend had the request");
            await Task.Delay(20);
        }
        pair.Server.Signal(SigStop);
        try
        {
            using var answer = await pending.WaitAsync(Timeouts.Default);
            var seen = $"{(int)answer.StatusCode} {Assert.Single(answer.Headers.GetValues("Proxy-Status"))}";
            Assert.StartsWith("504 passage; error=connection_timeout; ", seen, StringComparison.Ordinal);
            Assert.Contains("keep-alive ping", seen, StringComparison.Ordinal);
        }
        finally
        {
            pair.Server.Signal(SigCont);
        }
    }
}
