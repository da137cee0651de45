using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Client;

/// <summary>
/// A client that presents a key of its own (<see cref="PassageClientOptions.Identity"/>, <c>client.key</c>) to relays that
/// serve only listed node IDs (mutual TLS, <c>--client-id</c>).
/// </summary>
public sealed class ClientIdentityTests
{
    private static async Task<PassageClient> StartClientAsync(ConnectHarness relay, NodeIdentity? identity)
    {
        var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)],
            Identity = identity,
        });
        await client.StartAsync().WaitAsync(Timeouts.Default);
        return client;
    }

    [Fact]
    public async Task A_relay_serving_only_listed_client_ids_carries_the_tunnels_of_a_client_presenting_one()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        await using var relay = await ConnectHarness.StartAsync(o => o with { ClientIds = [identity.NodeId.ToString()] });
        await using var client = await StartClientAsync(relay, identity);

        Assert.True(client.Status.Single().IsUp);
        for (var i = 0; i < 2; i++)
        {
            await using var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default);
            await EchoServer.AssertEchoesAsync(tunnel, "hello"u8.ToArray());
        }
        Assert.Equal(2, relay.Counter("passage.relay.tunnels.opened"));
    }

    /// <summary>
    /// Such a relay refuses the key after the TLS 1.3 handshake is over for the client, and ends the connection: the
    /// client's HTTP stack says only that the server "did not complete the HTTP/2 handshake", or that a request failed. The
    /// failure says what such a relay does, and which key this client presents, so that the relay's operator can be
    /// asked to list it.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_client_presenting_no_key_or_an_unlisted_one_is_refused_and_told_which_it_presents(bool presentsOne)
    {
        using var listed = NodeIdentity.Create();
        using var other = NodeIdentity.Create();
        await using var relay = await ConnectHarness.StartAsync(o => o with { ClientIds = [listed.NodeId.ToString()] });
        await using var client = await StartClientAsync(relay, presentsOne ? other : null);

        Assert.False(client.Status.Single().IsUp);
        var error = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayUnavailable, error.Failure);
        Assert.Contains("it took the connection and has answered nothing since: if it requires mutual TLS (--client-id), it does not list this client's key", error.Message);
        Assert.Contains(presentsOne ? $"(this client presents node ID {other.NodeId})" : "(this client presents no key (client.key))", error.Message);
        Assert.Equal(0, relay.Counter("passage.relay.tunnels.opened"));
    }

    /// <summary>A relay that asks nothing of the client serves one that presents a key as any other.</summary>
    [Fact]
    public async Task A_relay_that_lists_no_client_ids_serves_a_client_presenting_a_key()
    {
        await using var echo = new EchoServer();
        using var identity = NodeIdentity.Create();
        await using var relay = await ConnectHarness.StartAsync();
        await using var client = await StartClientAsync(relay, identity);

        await using var tunnel = await client.ConnectAsync("origin.test", echo.Port).AsTask().WaitAsync(Timeouts.Default);
        await EchoServer.AssertEchoesAsync(tunnel, "hi"u8.ToArray());
    }
}
