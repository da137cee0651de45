using System.Net;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// <c>system.backendTimeout</c> at the server end: a backend that keeps a request waiting without a byte gets it ended
/// (504 before the answer, cut off after), while slow but moving backends and slow clients are left alone.
/// </summary>
public sealed class TunnelBackendTimeoutTests : IAsyncLifetime
{
    private TunnelPair _pair = null!;

    public async Task InitializeAsync() => _pair = await TunnelPair.StartAsync(system: "\"backendTimeout\": \"2s\"");

    public async Task DisposeAsync() => await _pair.DisposeAsync();

    [Fact]
    public async Task A_backend_that_never_answers_gets_504_with_the_reason_and_the_tunnel_carries_on()
    {
        using var client = _pair.CreateHttpClient();
        using var silent = await client.GetAsync("/silent").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.GatewayTimeout, silent.StatusCode);
        Assert.Contains("error=http_response_timeout", Assert.Single(silent.Headers.GetValues("Proxy-Status")), StringComparison.Ordinal);
        await _pair.Server.WaitForLineAsync(l => l.Contains("kept a request waiting 2s", StringComparison.Ordinal) && l.Contains("answered 504", StringComparison.Ordinal));

        using var next = await client.GetAsync("/after").WaitAsync(Timeouts.Default);
        Assert.Equal("GET /after", await next.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_backend_silent_after_a_request_body_gets_504()
    {
        using var client = _pair.CreateHttpClient();
        using var content = new ByteArrayContent(new byte[100_000]);
        using var silent = await client.PostAsync("/silent", content).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.GatewayTimeout, silent.StatusCode);
    }

    [Fact]
    public async Task A_backend_that_stalls_mid_answer_has_its_answer_cut_off_not_passed_as_whole()
    {
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/stall", HttpCompletionOption.ResponseHeadersRead).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Assert.ThrowsAsync<HttpRequestException>(() => response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
        await _pair.Server.WaitForLineAsync(l => l.Contains("kept a request waiting 2s", StringComparison.Ordinal) && l.Contains("answer cut off", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_backend_that_keeps_moving_is_never_cut_however_long_the_answer_takes()
    {
        // Fifteen bytes 200 ms apart: longer than backendTimeout in all, never that long without a byte.
        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/drip").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("...............", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_client_that_pauses_its_upload_longer_than_the_timeout_is_not_cut()
    {
        // The backend waits for the body the whole time; only the client is slow, and that is not the backend's fault.
        using var client = _pair.CreateHttpClient();
        using var content = new StreamContent(new PausingStream());
        using var response = await client.PostAsync("/echo", content).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("first half;second half", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_client_that_pauses_an_upload_with_trailers_while_the_answer_streams_is_not_cut()
    {
        // A request with trailers goes to the backend on a connection of its own, whose answer is read while the body
        // is still coming: the backend's echo waits on the client, and the clock must not run meanwhile.
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(_pair.HttpPort, "POST", "/echo", new PausingStream(), "Trailer: x-digest\r\n", "x-digest: abc\r\n", cts.Token);
        Assert.Equal(200, answer.Status);
        Assert.Equal("first half;second half", Encoding.ASCII.GetString(answer.Body));
    }

    /// <summary>A request body in two parts, three seconds apart (longer than the backend timeout).</summary>
    private sealed class PausingStream : Passage.Transport.ReadOnlyStream
    {
        private int _part;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            switch (_part++)
            {
                case 0:
                    return Encoding.ASCII.GetBytes("first half;", buffer.Span);
                case 1:
                    await Task.Delay(TimeSpan.FromSeconds(3), cancellationToken);
                    return Encoding.ASCII.GetBytes("second half", buffer.Span);
                default:
                    return 0;
            }
        }
    }
}
