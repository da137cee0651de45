using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Each end as an HTTP intermediary (RFC 9110 §7.6), through a real client end and server end to a local backend: the
/// tunnel's one Via entry, Max-Forwards answered at 0 and counted down otherwise.
/// </summary>
public sealed partial class TunnelIntermediaryTests(TunnelPairFixture fixture) : IClassFixture<TunnelPairFixture>
{
    private TunnelPair Pair => fixture.Pair;

    /// <summary>A field's value as the backend's /headers listed it, or null.</summary>
    private static string? Field(string seen, string name) =>
        seen.Split('\n').FirstOrDefault(line => line.StartsWith(name + ": ", StringComparison.Ordinal))?[(name.Length + 2)..];

    private async Task<(HttpStatusCode Status, string Body, HttpResponseMessage Response)> SendAsync(HttpMethod method, string target, params (string Name, string Value)[] fields)
    {
        using var client = Pair.CreateHttpClient();
        using var request = new HttpRequestMessage(method, target);
        foreach (var (name, value) in fields)
        {
            request.Headers.TryAddWithoutValidation(name, value);
        }
        var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response);
    }

    /// <summary>The pseudonym an end logged in its <c>listening</c> line.</summary>
    private static string LoggedPseudonym(PassageProcess end) =>
        ViaName().Match(end.StandardError) is { Success: true } match ? match.Groups["name"].Value : throw new InvalidOperationException("no Via in the listening line");

    [GeneratedRegex(@"Via (?<name>passage-[0-9a-f]{8})\)")]
    private static partial Regex ViaName();

    /// <summary>A GET of the backend's <c>/headers</c> to a client end's <paramref name="port"/>, with <paramref name="fields"/> (whole lines): the whole answer.</summary>
    private static Task<string> GetHeadersAsync(int port, string fields = "", string protocol = "HTTP/1.1") =>
        RawHttp1.SendHeadAsync(port, $"GET /headers {protocol}\r\nHost: service\r\n{fields}Connection: close\r\n\r\n", readToEnd: true);

    /// <summary>
    /// The backend sees the tunnel as one intermediary, the server end, under its pseudonym, after the application's own
    /// entries and with the protocol the application spoke: the client end's pseudonym, which would tell the backend which
    /// requests came from the same client end, does not reach it.
    /// </summary>
    [Fact]
    public async Task The_backend_sees_the_server_end_alone_after_the_application_s_entries()
    {
        var (status, seen, response) = await SendAsync(HttpMethod.Get, "/headers", ("Via", "1.0 upstream (an earlier proxy, with a comma)"));
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, status);
        }
        var server = LoggedPseudonym(Pair.Server);
        var client = LoggedPseudonym(Pair.Client);
        Assert.NotEqual(server, client);
        Assert.Equal($"1.0 upstream (an earlier proxy, with a comma), 1.1 {server}", Field(seen, "via"));
        Assert.DoesNotContain(client, seen, StringComparison.Ordinal);
    }

    /// <summary>
    /// Whatever Via the application sent (none, an empty one, several field lines, a comment with commas or left open, an
    /// HTTP/1.0 request), the backend gets it as sent, then the server end's entry in place of the client end's.
    /// </summary>
    [Theory]
    [InlineData("HTTP/1.1", "", "1.1 {server}")]
    [InlineData("HTTP/1.1", "Via: \r\n", "1.1 {server}")]
    [InlineData("HTTP/1.1", "Via: 1.0 a\r\nVia: 1.1 b (x, y)\r\n", "1.0 a, 1.1 b (x, y), 1.1 {server}")]
    [InlineData("HTTP/1.1", "Via: 1.0 a, 1.1 b (x, (y, z)), 1.1 passage-0a1b2c3d\r\n", "1.0 a, 1.1 b (x, (y, z)), 1.1 passage-0a1b2c3d, 1.1 {server}")]
    [InlineData("HTTP/1.1", "Via: 1.0 a (left open, 1.1 b\r\n", "1.0 a (left open, 1.1 b, 1.1 {server}")]
    [InlineData("HTTP/1.0", "Via: 1.0 a\r\n", "1.0 a, 1.0 {server}")]
    public async Task The_application_s_Via_reaches_the_backend_before_the_server_end_s_entry(string protocol, string via, string expected)
    {
        var answer = await GetHeadersAsync(Pair.HttpPort, via, protocol);
        Assert.StartsWith("HTTP/1.1 200 ", answer);
        Assert.Contains($"\nvia: {expected.Replace("{server}", LoggedPseudonym(Pair.Server), StringComparison.Ordinal)}\n", answer, StringComparison.Ordinal);
    }

    /// <summary>
    /// Two client ends of one server end, as several sites share one in CA mode: the backend gets the same Via from both,
    /// so it cannot tell whose requests are whose.
    /// </summary>
    [Fact]
    public async Task Requests_from_two_client_ends_reach_the_backend_with_the_same_Via()
    {
        await using var second = Pair.StartEnd("client-second.json", TunnelPair.ClientConfig(Pair.ServerId, Pair.TunnelPort, Pair.ClientKey, ""));
        var port = await second.WaitForListeningPortAsync();
        await second.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal));
        Assert.NotEqual(LoggedPseudonym(Pair.Client), LoggedPseudonym(second));
        var first = await GetHeadersAsync(Pair.HttpPort);
        var other = await GetHeadersAsync(port);
        var expected = $"\nvia: 1.1 {LoggedPseudonym(Pair.Server)}\n";
        Assert.Contains(expected, first, StringComparison.Ordinal);
        Assert.Contains(expected, other, StringComparison.Ordinal);
    }

    /// <summary>
    /// Ends that drew the same pseudonym (once in 2^32 starts): the server end does not take the client end's entry for its
    /// own, so requests go through rather than every one being refused as a loop.
    /// </summary>
    [Fact]
    public async Task Ends_that_drew_the_same_pseudonym_carry_requests_rather_than_refuse_them_as_loops()
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, viaPseudonym: "passage-0a1b2c3d");
        var answer = await GetHeadersAsync(ends.HttpPort);
        Assert.StartsWith("HTTP/1.1 200 ", answer);
        Assert.Contains("\nvia: 1.1 passage-0a1b2c3d\n", answer, StringComparison.Ordinal);
    }

    /// <summary>
    /// A request from a client end that does not name its entry (one from before Via sends none): the server end takes
    /// nothing away and adds its own entry after the rest, and a Via that names it, as in a loop through such a client end,
    /// is a loop even in last place. An entry named that is not the last is not taken away either.
    /// </summary>
    [Theory]
    [InlineData("1.1 passage-99999999", null, "1.1 passage-99999999, 2 passage-0a1b2c3d")]
    [InlineData("1.1 passage-99999999, 1.0 b", "passage-99999999", "1.1 passage-99999999, 1.0 b, 2 passage-0a1b2c3d")]
    [InlineData("1.0 b, 1.1 passage-0a1b2c3d", null, null)]
    public async Task A_server_end_takes_away_only_the_entry_its_peer_names_last(string via, string? named, string? expected)
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, viaPseudonym: "passage-0a1b2c3d");
        using var request = new HttpRequestMessage(HttpMethod.Get, ends.Origin + "/headers");
        request.Headers.TryAddWithoutValidation("Via", via);
        if (named is not null)
        {
            request.Headers.TryAddWithoutValidation(TunnelHeaders.Via, named);
        }
        using var response = await ends.SendAsync(request, CancellationToken.None).WaitAsync(Timeouts.Default);
        if (expected is null)
        {
            Assert.Equal(HttpStatusCode.BadGateway, response.StatusCode);
            Assert.StartsWith("passage; error=proxy_loop_detected; details=\"the request came round to the server end again", string.Join(",", response.Headers.GetValues("Proxy-Status")));
            return;
        }
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, Field(await response.Content.ReadAsStringAsync(), "via"));
    }

    [Theory]
    [InlineData("0", "client end")]
    [InlineData("1", "server end")]
    public async Task An_OPTIONS_whose_Max_Forwards_runs_out_is_answered_by_that_end(string maxForwards, string end)
    {
        var before = Pair.Backend.Requests;
        var (status, _, response) = await SendAsync(HttpMethod.Options, "/headers", ("Max-Forwards", maxForwards));
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, status);
            Assert.Equal($"passage; error=proxy_internal_response; details=\"Max-Forwards is 0: answered by the {end}\"", string.Join(",", response.Headers.GetValues("Proxy-Status")));
        }
        Assert.Equal(before, Pair.Backend.Requests);
    }

    [Theory]
    [InlineData("0", "client end")]
    [InlineData("1", "server end")]
    public async Task A_TRACE_whose_Max_Forwards_runs_out_is_refused_by_that_end_not_echoed(string maxForwards, string end)
    {
        var before = Pair.Backend.Requests;
        var (status, _, response) = await SendAsync(HttpMethod.Trace, "/headers", ("Max-Forwards", maxForwards), ("Authorization", "Bearer secret"));
        using (response)
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, status);
            Assert.Equal($"passage; error=http_request_denied; details=\"Max-Forwards is 0, and the {end} does not echo TRACE\"", string.Join(",", response.Headers.GetValues("Proxy-Status")));
            Assert.Equal(["OPTIONS"], response.Content.Headers.Allow);
        }
        Assert.Equal(before, Pair.Backend.Requests);
    }

    [Theory]
    [InlineData("OPTIONS", "5", "3")]
    [InlineData("TRACE", "2", "0")]
    [InlineData("GET", "0", "0")]
    [InlineData("TRACE", "00x", "00x")]
    public async Task A_request_that_goes_on_reaches_the_backend_with_Max_Forwards_counted_down_at_each_end(string method, string sent, string arrived)
    {
        var (status, seen, response) = await SendAsync(new HttpMethod(method), "/headers", ("Max-Forwards", sent));
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, status);
        }
        Assert.StartsWith($"{method} /headers\n", seen);
        Assert.Equal(arrived, Field(seen, "max-forwards"));
    }

    [Fact]
    public async Task An_asterisk_form_OPTIONS_with_Max_Forwards_0_is_answered_rather_than_refused()
    {
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort, "OPTIONS * HTTP/1.1\r\nHost: service\r\nMax-Forwards: 0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", head);
        Assert.Contains("error=proxy_internal_response", head, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_asterisk_form_OPTIONS_that_would_go_on_is_refused_501_at_the_client_end()
    {
        var before = Pair.Backend.Requests;
        var head = await RawHttp1.SendHeadAsync(Pair.HttpPort, "OPTIONS * HTTP/1.1\r\nHost: service\r\nMax-Forwards: 1\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 501 ", head);
        Assert.Contains("error=http_request_error", head, StringComparison.Ordinal);
        Assert.Equal(before, Pair.Backend.Requests);
    }

    [Fact]
    public async Task An_OPTIONS_that_ends_at_the_client_end_is_answered_while_the_session_is_down()
    {
        await using var pair = await TunnelPair.StartAsync();
        await pair.KillServerAsync();
        await pair.Client.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
        var head = await RawHttp1.SendHeadAsync(pair.HttpPort, "OPTIONS * HTTP/1.1\r\nHost: service\r\nMax-Forwards: 0\r\n\r\n");
        Assert.StartsWith("HTTP/1.1 200 ", head);
        Assert.Contains("answered by the client end", head, StringComparison.Ordinal);
    }

    /// <summary>
    /// Each end asks every request whether it is answered here: one that goes on (a GET, its Via naming other hops) is let
    /// through without an allocation.
    /// </summary>
    [Fact]
    public async Task A_request_that_goes_on_is_let_through_without_allocating()
    {
        var context = new DefaultHttpContext();
        context.Request.Method = HttpMethods.Get;
        context.Request.Protocol = "HTTP/1.1";
        context.Request.Headers.Via = "1.0 upstream, 1.1 passage-99999999";
        context.Request.Headers.MaxForwards = "3";
        var hop = new Intermediary(serverEnd: false, "passage-0a1b2c3d", NullLogger.Instance);
        Assert.False(await hop.AnsweredHereAsync(context));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var answered = hop.AnsweredHereAsync(context);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(answered.IsCompletedSuccessfully);
        Assert.False(await answered);
        Assert.Equal(0, allocated);
    }

    [Theory]
    [InlineData("1.1 passage-0a1b2c3d", true)]
    [InlineData("1.0 a, 1.1 passage-0a1b2c3d (comment)", true)]
    [InlineData("HTTP/2 Passage-0A1B2C3D", true)]
    [InlineData("1.1 a (passage-0a1b2c3d)", false)]
    [InlineData("1.1 a (x, 1.1 passage-0a1b2c3d y)", false)]
    [InlineData("1.1 a (x \\) , 1.1 passage-0a1b2c3d y)", false)]
    [InlineData("1.0 a (left open, 1.1 passage-0a1b2c3d", true)]
    [InlineData("1.0 a (left open \\, 1.1 passage-0a1b2c3d, 2 passage-99999999", true)]
    [InlineData("1.0 a ((closed once), 1.1 passage-0a1b2c3d", true)]
    [InlineData("1.1 passage-0a1b2c3d0", false)]
    [InlineData("passage-0a1b2c3d", false)]
    public void Via_names_the_pseudonym_only_as_an_entry_s_recipient(string via, bool names) =>
        Assert.Equal(names, Intermediary.Names(via, "passage-0a1b2c3d"));
}
