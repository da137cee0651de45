using System.Net;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Each end as an HTTP intermediary (RFC 9110 §7.6), through a real client end and server end to a local backend: its
/// Via entry, Max-Forwards answered at 0 and counted down otherwise.
/// </summary>
public sealed partial class TunnelIntermediaryTests(TunnelPairFixture fixture) : IClassFixture<TunnelPairFixture>
{
    private TunnelPair Pair => fixture.Pair;

    /// <summary>One Via entry: the protocol the end received, and a pseudonym of the end's.</summary>
    [GeneratedRegex(@"^(?<protocol>[0-9.]+) (?<name>passage-[0-9a-f]{8})$")]
    private static partial Regex ViaEntry();

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

    [Fact]
    public async Task Each_end_adds_a_Via_entry_under_a_pseudonym_after_those_the_request_came_with()
    {
        var (status, seen, response) = await SendAsync(HttpMethod.Get, "/headers", ("Via", "1.0 upstream (an earlier proxy, with a comma)"));
        using (response)
        {
            Assert.Equal(HttpStatusCode.OK, status);
        }
        var via = Field(seen, "via");
        Assert.NotNull(via);
        Assert.StartsWith("1.0 upstream (an earlier proxy, with a comma),", via);
        var ours = via["1.0 upstream (an earlier proxy, with a comma),".Length..].Split(',', StringSplitOptions.TrimEntries)
            .Select(entry => ViaEntry().Match(entry)).ToArray();
        // The client end received HTTP/1.1 from the application, the server end HTTP/2 over the link: two names, no address.
        Assert.Equal(2, ours.Length);
        Assert.All(ours, entry => Assert.True(entry.Success));
        Assert.Equal(["1.1", "2"], ours.Select(entry => entry.Groups["protocol"].Value));
        Assert.NotEqual(ours[0].Groups["name"].Value, ours[1].Groups["name"].Value);
        Assert.DoesNotContain("127.0.0.1", via, StringComparison.Ordinal);
        Assert.DoesNotContain(Pair.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), via, StringComparison.Ordinal);
        Assert.Contains($"Via {ours[0].Groups["name"].Value})", Pair.Client.StandardError, StringComparison.Ordinal);
        Assert.Contains($"Via {ours[1].Groups["name"].Value})", Pair.Server.StandardError, StringComparison.Ordinal);
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
        var hop = new Intermediary("client end", "passage-0a1b2c3d", NullLogger.Instance);
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
