using System.Security.Cryptography;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>Both ends with <c>transport.compress</c> and <c>system.addForwarded</c> on.</summary>
public sealed class TunnelCompressionTests : IAsyncLifetime
{
    private TunnelPair _pair = null!;

    public async Task InitializeAsync() =>
        _pair = await TunnelPair.StartAsync("\"transport\": { \"compress\": true }", system: "\"addForwarded\": true");

    public async Task DisposeAsync() => await _pair.DisposeAsync();

    [Fact]
    public async Task Compressed_bodies_arrive_intact_with_their_original_length()
    {
        using var client = _pair.CreateHttpClient();
        var text = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("compressible text ", 200_000)));
        using (var content = new ByteArrayContent(text))
        {
            using var response = await client.PostAsync("/hash", content).WaitAsync(Timeouts.Default);
            Assert.Equal($"POST {text.Length} {Convert.ToHexString(SHA256.HashData(text))} cl={text.Length} te=", await response.Content.ReadAsStringAsync());
        }
        using (var download = await client.GetAsync("/bytes/20000000?length").WaitAsync(Timeouts.Default))
        {
            Assert.Equal(20_000_000, download.Content.Headers.ContentLength);
            var body = await download.Content.ReadAsByteArrayAsync();
            Assert.Equal(SizedPatternStream.Hash(20_000_000), Convert.ToHexString(SHA256.HashData(body)));
        }
        using (var chunked = new StreamContent(new SizedPatternStream(30_000_000)))
        {
            using var request = new HttpRequestMessage(HttpMethod.Put, "/hash") { Content = chunked };
            request.Headers.TransferEncodingChunked = true;
            using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
            Assert.StartsWith($"PUT 30000000 {SizedPatternStream.Hash(30_000_000)}", await response.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public async Task Trailers_cross_both_ways_with_compression_on()
    {
        var body = Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("compressible text ", 50_000)));
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var answer = await RawHttp1.SendChunkedAsync(_pair.HttpPort, "POST", "/hash", new MemoryStream(body), "Trailer: x-digest\r\n", "x-digest: abc\r\n", cts.Token);
        Assert.Equal($"POST {body.Length} {Convert.ToHexString(SHA256.HashData(body))} cl=none te=chunked trailers=x-digest:abc", Encoding.ASCII.GetString(answer.Body));

        using var client = _pair.CreateHttpClient();
        using var response = await client.GetAsync("/trailers/200000").WaitAsync(Timeouts.Default);
        var download = await response.Content.ReadAsByteArrayAsync();
        Assert.Equal(Convert.ToHexString(SHA256.HashData(download)), Assert.Single(response.TrailingHeaders.GetValues("x-sha256")));
    }

    [Fact]
    public async Task Forwarded_names_each_hop_when_asked_for()
    {
        using var client = _pair.CreateHttpClient();
        using var request = new HttpRequestMessage(HttpMethod.Get, "/headers");
        request.Headers.Host = "api.test:8080";
        using var response = await client.SendAsync(request).WaitAsync(Timeouts.Default);
        var seen = await response.Content.ReadAsStringAsync();
        // RFC 7239 §4: the client end adds the application's address, the server end the client end's.
        Assert.Contains("forwarded: for=127.0.0.1;proto=http;host=\"api.test:8080\", for=127.0.0.1\n", seen);
    }

    [Fact]
    public async Task A_WebSocket_works_with_compression_on()
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await socket.ConnectAsync(new Uri($"ws://127.0.0.1:{_pair.HttpPort}/ws"), cts.Token);
        await socket.SendAsync("ping"u8.ToArray(), System.Net.WebSockets.WebSocketMessageType.Text, true, cts.Token);
        var buffer = new byte[16];
        var result = await socket.ReceiveAsync(buffer.AsMemory(), cts.Token);
        Assert.Equal("ping", Encoding.UTF8.GetString(buffer, 0, result.Count));
        await socket.CloseAsync(System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "", cts.Token);
    }
}
