using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>An HTTP/1.1-only relay that answers a tunnel request with interim answers (1xx) and never a final one.</summary>
public sealed class Http1InterimAnswersTests
{
    /// <summary>
    /// Interim answers without end fail the attempt as the relay's error, as an HTTP/2 relay's do (the HTTP client's limits
    /// end those): over HTTP/1.1 each was passed over and the next one read, so the attempt went on until the answer timeout
    /// (30 s by default, the tunnel going to no other relay meanwhile), and for good without one.
    /// </summary>
    [Fact]
    public async Task Endless_interim_answers_fail_the_attempt_as_the_relays_without_a_timeout()
    {
        using var identity = NodeIdentity.Create();
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(16);
        var serving = Loopback.AcceptEachAsync(listener, accepted => _ = Task.Run(async () =>
        {
            await using var tls = new SslStream(new NetworkStream(accepted, ownsSocket: true));
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificate = identity.Certificate,
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                });
                var head = new byte[1];
                var last = 0u;
                // The request head, to its end; a probe sends none.
                while (last != 0x0d0a0d0a && await tls.ReadAsync(head) == 1)
                {
                    last = (last << 8) | head[0];
                }
                while (true)
                {
                    await tls.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray());
                }
            }
            catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException or SocketException or ObjectDisposedException)
            {
                // The client has had enough.
            }
        }));

        await using var client = new PassageClient(new PassageClientOptions
        {
            Relays = [new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)listener.LocalEndPoint!).Port)],
            AnswerTimeout = Timeout.InfiniteTimeSpan,
        }, timeProvider: new ManualTimeProvider());
        await client.StartAsync().WaitAsync(Timeouts.Default);

        var failure = await Assert.ThrowsAsync<PassageTunnelException>(() => client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(TunnelFailure.RelayError, failure.Failure);
        Assert.False(client.Status.Single().IsUp);
        listener.Close();
        await serving.WaitAsync(Timeouts.Default);
    }
}
