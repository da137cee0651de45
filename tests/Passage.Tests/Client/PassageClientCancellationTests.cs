using System.Net;
using Passage.Client;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using static Passage.Tests.Client.HostileRelayTests;

namespace Passage.Tests.Client;

/// <summary><see cref="PassageClient.ConnectAsync"/> cancelled by its caller at each stage of a tunnel's setup, and after it.</summary>
public sealed class PassageClientCancellationTests
{
    /// <summary>
    /// A <see cref="PassageClient.ConnectAsync"/> its caller cancels throws an <see cref="OperationCanceledException"/> that
    /// names the caller's token, whatever the stage: it named a token of the client's own (linked to the caller's), so
    /// that an application telling its own cancelling from a timeout by the token, as HttpClient's callers do, took it for
    /// neither. The relay sees a request it was sent end (its stream reset); the relay stays up, its connection open and
    /// used by the next tunnel; disposing the client closes every connection it opened, the one whose TLS handshake the
    /// cancelled request had started too. A token cancelled after the tunnel opened leaves the tunnel alone.
    /// </summary>
    [Theory]
    [InlineData("before the request")]
    [InlineData("in the relay's TLS handshake")]
    [InlineData("waiting for the relay's answer")]
    [InlineData("after the 200")]
    public async Task A_cancelled_tunnel_setup_throws_the_callers_cancellation_and_leaves_nothing_open(string stage)
    {
        var waits = stage == "waiting for the relay's answer";
        // The tunnel request to wait on is never answered; every other one is answered 200, its bytes echoed.
        await using var relay = HostileRelay.Start(waits ? AnsweredInTurn(_ => []) : AnsweredInTurn());
        // Holds the TLS handshake of the client's first connection, which the tunnel request opens (no start before it).
        var inTls = stage == "in the relay's TLS handshake";
        await using var tap = new TcpTap(new IPEndPoint(IPAddress.Loopback, relay.Address.Port), held: inTls);
        var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new Passage.Identity.PeerAddress(relay.Address.NodeId, "127.0.0.1", tap.Port)],
            ProbeInterval = TimeSpan.FromHours(1),
        }, timeProvider: new ManualTimeProvider());
        if (!inTls)
        {
            await client.StartAsync().WaitAsync(Timeouts.Default);
        }
        using var cancelling = new CancellationTokenSource();
        if (stage == "before the request")
        {
            await cancelling.CancelAsync();
        }

        var connecting = client.ConnectAsync("origin.test", 443, cancelling.Token).AsTask();
        if (stage == "after the 200")
        {
            await using var tunnel = await connecting.WaitAsync(Timeouts.Default);
            await cancelling.CancelAsync();
            await AssertEchoesAsync(tunnel);
        }
        else
        {
            if (inTls)
            {
                // Its ClientHello has come: the connection is made, its handshake under way.
                await Timeouts.WaitUntilAsync(() => tap.FirstBytes.Count > 0);
            }
            else if (waits)
            {
                await Timeouts.WaitUntilAsync(() => relay.Tunnels == 1);
            }
            await cancelling.CancelAsync();
            var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connecting.WaitAsync(Timeouts.Default));
            Assert.Equal(cancelling.Token, error.CancellationToken);
            tap.Release();
        }

        if (waits)
        {
            await Timeouts.WaitUntilAsync(() => relay.Connections.Single().Received.Any(f => f.Type == RawHttp2.RstStream));
        }
        Assert.Equal(waits || stage == "after the 200" ? 1 : 0, relay.Tunnels);
        Assert.True(client.Status.Single().IsUp);
        await using (var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default))
        {
            await AssertEchoesAsync(tunnel);
        }
        Assert.Single(relay.Connections);
        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Timeouts.WaitUntilAsync(() => relay.Connections.All(c => c.Closed.IsCompleted));
    }
}
