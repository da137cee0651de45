using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using Passage.Tests.Tunnel;

namespace Passage.Tests.Identity;

/// <summary>
/// Pinned TLS never goes to the network for the other side's certificate. A certificate may say where its issuer
/// can be downloaded (authority information access, RFC 5280 §4.2.2.1); the runtime's default chain check follows
/// that before Passage's pin check is asked. Whoever is on the other side chooses the certificate, so following it
/// would let a relay make its clients reveal their address to any host it names (and a client make a relay send
/// requests where it likes), holding the handshake meanwhile.
/// </summary>
public sealed class OfflineChainTests : IDisposable
{
    private readonly TcpListener _issuerUrl = new(IPAddress.Loopback, 0);
    private readonly TestCertificateAuthority _stranger = TestCertificateAuthority.Create("Stranger CA");

    public OfflineChainTests() => _issuerUrl.Start();

    private Uri IssuerUrl => new($"http://127.0.0.1:{((IPEndPoint)_issuerUrl.LocalEndpoint).Port}/issuer.cer");

    [Fact]
    public async Task A_client_probing_a_relay_fetches_nothing_the_relays_certificate_points_to()
    {
        var (port, serving) = ServeStranger();
        var (_, pinMismatch) = await Http1ConnectDialer.ProbeAsync(new PeerAddress(OtherNodeId(), "127.0.0.1", port), certificate: null, Timeouts.Default, CancellationToken.None);
        await serving;
        Assert.True(pinMismatch);
        Assert.False(_issuerUrl.Pending(), "the client connected to the URL in the relay's certificate");
    }

    [Fact]
    public async Task A_clients_HTTP2_link_fetches_nothing_the_relays_certificate_points_to()
    {
        var (port, serving) = ServeStranger();
        using var link = new RelayLink(new PeerAddress(OtherNodeId(), "127.0.0.1", port), token: null, certificate: null, Timeouts.Default, Timeouts.Default);
        var attempt = await link.OpenAsync("origin.test", 443, () => { }, CancellationToken.None).WaitAsync(Timeouts.Default);
        await serving;
        Assert.Null(attempt.Stream);
        Assert.False(_issuerUrl.Pending(), "the client connected to the URL in the relay's certificate");
    }

    [Fact]
    public async Task A_relay_checking_client_pins_fetches_nothing_a_clients_certificate_points_to()
    {
        await using var relay = await ConnectHarness.StartAsync(o => o with { ClientIds = [OtherNodeId().ToString()] });
        using var connection = new TcpClient();
        await connection.ConnectAsync(IPAddress.Loopback, relay.TlsPort).WaitAsync(Timeouts.Default);
        await using var tls = new SslStream(connection.GetStream());
        using var certificate = StrangerCertificate();
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "relay.test",
                ClientCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }).WaitAsync(Timeouts.Default);
            // TLS 1.3: the server's verdict on the client's certificate arrives with the first read.
            _ = await tls.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            // Refused: the point.
        }
        Assert.False(_issuerUrl.Pending(), "the relay connected to the URL in the client's certificate");
    }

    /// <summary>A TLS server presenting the stranger's certificate for one handshake; the port, and the handshake's end.</summary>
    private (int Port, Task Serving) ServeStranger()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        return (port, ServeAsync(listener));
    }

    private async Task ServeAsync(TcpListener listener)
    {
        using (listener.Server)
        using (var certificate = StrangerCertificate())
        using (var connection = await listener.AcceptTcpClientAsync().WaitAsync(Timeouts.Default))
        {
            await using var tls = new SslStream(connection.GetStream());
            try
            {
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true),
                    ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
                }).WaitAsync(Timeouts.Default);
                _ = await tls.ReadAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                // The client refused the certificate: the point.
            }
        }
    }

    private X509Certificate2 StrangerCertificate()
    {
        var leaf = _stranger.Issue("relay.test", [TestCertificateAuthority.ServerAuth, TestCertificateAuthority.ClientAuth], issuerUrl: IssuerUrl);
        return X509Certificate2.CreateFromPem(leaf.Certificate, leaf.Key);
    }

    private static NodeId OtherNodeId()
    {
        using var key = NodeIdentity.Create();
        return key.NodeId;
    }

    public void Dispose()
    {
        _issuerUrl.Stop();
        _stranger.Dispose();
    }
}
