using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// SSL_MODE_RELEASE_BUFFERS on a real TLS connection over loopback: that it takes effect on this runtime (a
/// runtime that moves SslStream's handle fails here rather than silently holding 10 KiB more per tunnel), and
/// that the connection carries bytes both ways afterwards.
/// </summary>
public sealed class TlsIdleBuffersTests
{
    private const long ReleaseBuffers = 0x10;

    [Fact]
    public async Task After_the_handshake_both_ends_give_back_idle_buffers_and_still_carry_every_byte()
    {
        using var identity = NodeIdentity.Create(["relay.test"]);
        var (serverSocket, clientSocket) = await Loopback.ConnectedPairAsync();
        await using var server = new SslStream(new NetworkStream(serverSocket, ownsSocket: true));
        await using var client = new SslStream(new NetworkStream(clientSocket, ownsSocket: true));
        await Task.WhenAll(
            server.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = identity.Certificate }),
            client.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "relay.test",
                RemoteCertificateValidationCallback = (_, certificate, _, _) => CertificatePin.MatchesPin(certificate, identity.NodeId),
            })).WaitAsync(Timeouts.Default);

        // Not set by the runtime: that is why this exists.
        Assert.Equal(0, TlsIdleBuffers.Mode(server)!.Value & ReleaseBuffers);

        Assert.True(TlsIdleBuffers.Apply(server));
        Assert.True(TlsIdleBuffers.Apply(client));
        Assert.Equal(ReleaseBuffers, TlsIdleBuffers.Mode(server)!.Value & ReleaseBuffers);
        Assert.Equal(ReleaseBuffers, TlsIdleBuffers.Mode(client)!.Value & ReleaseBuffers);

        // Buffers freed and taken again between records, in both directions at once.
        var data = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 17);
        var toServer = new byte[data.Length];
        var toClient = new byte[data.Length];
        await Task.WhenAll(
            client.WriteAsync(data).AsTask(),
            server.WriteAsync(data).AsTask(),
            server.ReadExactlyAsync(toServer).AsTask(),
            client.ReadExactlyAsync(toClient).AsTask()).WaitAsync(Timeouts.Default);
        Assert.True(data.AsSpan().SequenceEqual(toServer));
        Assert.True(data.AsSpan().SequenceEqual(toClient));
    }

    [Fact]
    public async Task Before_the_handshake_there_is_nothing_to_set_and_nothing_changes()
    {
        var (a, b) = await Loopback.ConnectedPairAsync();
        using var peer = b;
        await using var tls = new SslStream(new NetworkStream(a, ownsSocket: true));
        Assert.False(TlsIdleBuffers.Apply(tls));
        Assert.Null(TlsIdleBuffers.Mode(tls));
    }
}
