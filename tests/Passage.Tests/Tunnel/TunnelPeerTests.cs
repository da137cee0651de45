using System.Net;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>Mutual TLS: each end accepts only the peer it pins.</summary>
public sealed class TunnelPeerTests
{
    [Fact]
    public async Task A_client_end_refuses_a_server_presenting_another_key()
    {
        await using var pair = await TunnelPair.StartAsync(waitUntilUp: true);
        // A second server end on another port with a different key; a client pinned to the first one's ID.
        var impostorKey = pair.NewIdentity("impostor.pem", out _);
        var impostorPort = TunnelPair.FreePort();
        await using var impostor = pair.StartEnd("impostor.json", pair.ServerConfig("", key: impostorKey).Replace($"127.0.0.1:{pair.TunnelPort}", $"127.0.0.1:{impostorPort}", StringComparison.Ordinal));
        await impostor.WaitForListeningPortAsync();
        await using var client = pair.StartEnd("fooled.json", TunnelPair.ClientConfig(pair.ServerId, impostorPort, pair.ClientKey, ""));
        var port = await client.WaitForListeningPortAsync();

        await client.WaitForLineAsync(l => l.Contains("refused a peer presenting node ID", StringComparison.Ordinal));
        await client.WaitForLineAsync(l => l.Contains("tunnel down: tls_certificate_error", StringComparison.Ordinal));
        // Every attempt (300ms apart) is refused the same way: one line for the cause, however many attempts.
        await client.WaitForLineAsync(_ => client.CountLines("refused a peer presenting") >= Attempts);
        Assert.Equal(1, client.CountLines("tunnel down"));
        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://127.0.0.1:{port}/").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.StartsWith("passage; error=tls_certificate_error", Assert.Single(response.Headers.GetValues("Proxy-Status")));
        Assert.DoesNotContain("tunnel up", client.StandardError);
    }

    [Fact]
    public async Task A_server_end_refuses_a_client_presenting_another_key()
    {
        await using var pair = await TunnelPair.StartAsync(waitUntilUp: true);
        // A client that pins the right server but presents a key the server does not pin.
        var strangerKey = pair.NewIdentity("stranger.pem", out _);
        await using var stranger = pair.StartEnd("stranger.json", TunnelPair.ClientConfig(pair.ServerId, pair.TunnelPort, strangerKey, ""));
        var port = await stranger.WaitForListeningPortAsync();

        await pair.Server.WaitForLineAsync(l => l.Contains("refused a peer presenting node ID", StringComparison.Ordinal));
        await stranger.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://127.0.0.1:{port}/").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.DoesNotContain("tunnel up", stranger.StandardError);
        Assert.Equal(0, pair.Backend.Requests);
    }

    [Fact]
    public async Task A_client_end_the_server_end_refuses_names_that_cause_in_one_line_and_in_its_503()
    {
        await using var pair = await TunnelPair.StartAsync(waitUntilUp: true);
        var strangerKey = pair.NewIdentity("stranger.pem", out var strangerId);
        await using var stranger = pair.StartEnd("stranger.json", TunnelPair.ClientConfig(pair.ServerId, pair.TunnelPort, strangerKey, ""));
        var port = await stranger.WaitForListeningPortAsync();

        // The server end refuses each attempt after the TLS handshake, by closing; the client end's HTTP/2 setup fails
        // wherever the close finds it. Still one cause, one line.
        await pair.Server.WaitForLineAsync(_ => pair.Server.CountLines($"refused a peer presenting node ID {strangerId}") >= Attempts);
        await stranger.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
        Assert.Equal(1, stranger.CountLines("tunnel down"));
        using var http = new HttpClient();
        using var response = await http.GetAsync($"http://127.0.0.1:{port}/").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var status = Assert.Single(response.Headers.GetValues("Proxy-Status"));
        Assert.StartsWith("passage; error=connection_terminated;", status);
        Assert.Contains($"refuses this end's certificate, node ID {strangerId}", status);
    }

    /// <summary>Connection attempts to watch (the client ends try every 300ms) before counting "tunnel down" lines.</summary>
    private const int Attempts = 8;
}
