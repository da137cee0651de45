using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;
using static Passage.Tests.Tunnel.TestCertificateAuthority;

namespace Passage.Tests.Tunnel;

/// <summary>
/// CA mode end to end (<c>tls.cert</c>, <c>tls.key</c>, <c>tls.ca</c> and <c>general.peerHostname</c> on both ends):
/// certificates issued by the one CA for the expected names carry requests; anything else is refused by the end that
/// checks it, and the client end answers 503 with Proxy-Status.
/// </summary>
public sealed class TunnelCaTests : IDisposable
{
    private const string ServerName = "server.tunnel.test";
    private const string ClientName = "client.tunnel.test";

    private readonly TemporaryDirectory _directory = new();
    private readonly TestCertificateAuthority _ca = Create("Passage Test CA");

    public void Dispose()
    {
        _ca.Dispose();
        _directory.Dispose();
    }

    [Fact]
    public async Task Ends_with_certificates_from_the_CA_carry_a_request_to_the_backend_and_its_answer_back()
    {
        await using var pair = await StartAsync();
        await pair.Client.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal));
        await pair.Client.WaitForLineAsync(l => l.Contains($"accepting only '{ServerName}' issued by the CA in tls.ca", StringComparison.Ordinal));
        await pair.Server.WaitForLineAsync(l => l.Contains($"accepting only '{ClientName}' issued by the CA in tls.ca", StringComparison.Ordinal));

        using var http = pair.CreateHttpClient();
        using var response = await http.PostAsync("/echo", new StringContent("through the CA tunnel", Encoding.UTF8)).WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("through the CA tunnel", await response.Content.ReadAsStringAsync());
        Assert.Equal(1, pair.Backend.Requests);
        Assert.DoesNotContain("refused a peer", pair.Client.Output + pair.Server.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Ends_with_certificates_from_an_intermediate_CA_come_up_when_tls_ca_holds_it_with_the_root()
    {
        // As CAs such as step-ca issue: leaves signed by an intermediate, tls.cert the leaf followed by the intermediate.
        using var intermediate = _ca.IssueIntermediate("Passage Test Intermediate");
        var server = intermediate.Issue(ServerName, [ServerAuth]);
        var client = intermediate.Issue(ClientName, [ClientAuth]);
        await using var pair = await StartAsync(
            server with { Certificate = server.Certificate + intermediate.CertificatePem },
            client with { Certificate = client.Certificate + intermediate.CertificatePem },
            caPem: _ca.CertificatePem + intermediate.CertificatePem);
        await pair.Client.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal));
        using var http = pair.CreateHttpClient();
        Assert.Equal("GET /via-intermediate", await http.GetStringAsync("/via-intermediate").WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task A_client_end_refuses_a_server_certificate_from_another_CA()
    {
        using var other = Create("Passage Test CA");
        await using var pair = await StartAsync(server: other.Issue(ServerName, [ServerAuth]));
        await AssertRefusedAsync(pair, TunnelMode.Client);
    }

    [Fact]
    public async Task A_server_end_refuses_a_client_certificate_from_another_CA()
    {
        using var other = Create("Passage Test CA");
        await using var pair = await StartAsync(client: other.Issue(ClientName, [ClientAuth]));
        await AssertRefusedAsync(pair, TunnelMode.Server);
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public async Task An_end_refuses_a_certificate_that_does_not_carry_its_peerHostname(TunnelMode checker)
    {
        // The certificates are good; the checking end expects another name than the one in the other's SAN.
        await using var pair = checker == TunnelMode.Client
            ? await StartAsync(clientExpects: "elsewhere.tunnel.test")
            : await StartAsync(serverExpects: "elsewhere.tunnel.test");
        await AssertRefusedAsync(pair, checker, "'elsewhere.tunnel.test' issued by the CA in tls.ca");
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public async Task An_end_refuses_an_expired_certificate(TunnelMode checker)
    {
        var expired = DateTimeOffset.UtcNow.AddDays(-1);
        await using var pair = checker == TunnelMode.Client
            ? await StartAsync(server: _ca.Issue(ServerName, [ServerAuth], notAfter: expired))
            : await StartAsync(client: _ca.Issue(ClientName, [ClientAuth], notAfter: expired));
        await AssertRefusedAsync(pair, checker);
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public async Task An_end_refuses_a_certificate_not_meant_for_the_role_the_other_end_plays(TunnelMode checker)
    {
        // From the CA, for the right name, but its extended key usage (RFC 5280 §4.2.1.12) lists only the other role.
        // No passage end starts with such a certificate of its own, so this test presents it.
        await using var pair = await StartAsync();
        await PresentToAsync(pair, checker, checker == TunnelMode.Server ? _ca.Issue(ClientName, [ServerAuth]) : _ca.Issue(ServerName, [ClientAuth]));
        Assert.Equal(0, pair.Backend.Requests);
    }

    [Theory]
    [InlineData(TunnelMode.Server, ClientAuth)]
    [InlineData(TunnelMode.Client, ServerAuth)]
    public async Task An_end_does_not_start_with_a_certificate_not_meant_for_its_own_role(TunnelMode mode, string usage)
    {
        // The other end would refuse it (and a server end's TLS cannot even offer it): say so before the start, as --check
        // does, naming the file.
        var name = mode == TunnelMode.Server ? ServerName : ClientName;
        var end = End("misissued", _ca.Issue(name, [usage]), _directory.Write("ca.pem", _ca.CertificatePem), "peer.tunnel.test");
        var config = _directory.Write("misissued.json", mode == TunnelMode.Server
            ? TunnelPair.ServerConfig(end, TunnelPair.FreePort(), TunnelPair.FreePort(), "")
            : TunnelPair.ClientConfig(end, TunnelPair.FreePort(), ""));
        var role = mode == TunnelMode.Server ? "server" : "client";
        foreach (string[] run in (string[][])[["tunnel", "--config", config, "--check"], ["tunnel", "--config", config]])
        {
            var (exitCode, _, error) = await PassageProcess.RunAsync(run);
            Assert.Equal(1, exitCode);
            Assert.Contains($"tls.cert: '{Path.Combine(_directory.Path, "misissued.crt")}' is not meant for TLS {role} authentication", error, StringComparison.Ordinal);
            Assert.Contains("nothing was started", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A tls.key that is not tls.cert's key, or a tls.cert that holds no certificate, is refused by <c>--check</c> and by
    /// the start alike, naming both keys: <c>--check</c> passed them, and the start failed with the runtime's words alone.
    /// </summary>
    [Theory]
    [InlineData("another certificate's key")]
    [InlineData("no certificate")]
    public async Task A_certificate_and_key_that_are_no_pair_are_refused_by_check_and_start_naming_them(string how)
    {
        var leaf = _ca.Issue(ClientName, [ClientAuth]);
        var bad = how == "no certificate" ? leaf with { Certificate = "not a certificate\n" } : leaf with { Key = _ca.Issue(ClientName, [ClientAuth]).Key };
        var end = End("unpaired", bad, _directory.Write("ca.pem", _ca.CertificatePem), ServerName);
        var config = _directory.Write("unpaired.json", TunnelPair.ClientConfig(end, TunnelPair.FreePort(), ""));
        foreach (string[] run in (string[][])[["tunnel", "--config", config, "--check"], ["config", "check", config], ["tunnel", "--config", config]])
        {
            var (exitCode, _, error) = await PassageProcess.RunAsync(run);
            Assert.Equal(1, exitCode);
            Assert.Contains("tls.cert and tls.key", error, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", error, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public async Task An_end_fetches_nothing_a_strangers_certificate_points_to(TunnelMode checker)
    {
        // A certificate from an unknown CA that says where its issuer can be downloaded (authority information access,
        // RFC 5280 §4.2.2.1). Following it would let anyone who connects make this end send requests where they like,
        // and hold the handshake meanwhile. The stranger is this test rather than a passage process, so that the
        // certificate's URL is one that only the checking end could have looked up.
        using var issuerUrl = new TcpListener(IPAddress.Loopback, 0);
        issuerUrl.Start();
        var url = new Uri($"http://127.0.0.1:{((IPEndPoint)issuerUrl.LocalEndpoint).Port}/issuer.cer");
        using var stranger = Create("Stranger CA");
        await using var pair = await StartAsync();
        var leaf = checker == TunnelMode.Server ? stranger.Issue(ClientName, [ClientAuth], issuerUrl: url) : stranger.Issue(ServerName, [ServerAuth], issuerUrl: url);
        await PresentToAsync(pair, checker, leaf);
        // The refusal is logged after the handshake's certificate checks, so a fetch would have connected by now.
        Assert.False(issuerUrl.Pending(), "an end connected to the URL in the stranger's certificate");
    }

    [Fact]
    public async Task A_client_end_fetches_nothing_its_own_certificate_points_to()
    {
        // Its own certificate from a CA names where its issuer can be fetched, as CA-issued ones commonly do: following
        // that at start sends a request off the machine and, where the network drops it, holds the start until it gives up.
        using var issuerUrl = new TcpListener(IPAddress.Loopback, 0);
        issuerUrl.Start();
        var leaf = _ca.Issue(ClientName, [ClientAuth], issuerUrl: new Uri($"http://127.0.0.1:{((IPEndPoint)issuerUrl.LocalEndpoint).Port}/issuer.cer"));
        var options = OwnEndOptions(TunnelMode.Client, leaf, ServerName) with { ConnectAddress = new HostPort("127.0.0.1", 9) };
        using var credentials = TunnelCredentials.Load(options);
        await using var session = new TunnelSession(options, credentials, NullLogger.Instance);
        Assert.False(issuerUrl.Pending(), "the client end connected to the URL in its own certificate");
    }

    [Fact]
    public async Task A_server_end_fetches_nothing_its_own_certificate_points_to()
    {
        using var issuerUrl = new TcpListener(IPAddress.Loopback, 0);
        issuerUrl.Start();
        var leaf = _ca.Issue(ServerName, [ServerAuth], issuerUrl: new Uri($"http://127.0.0.1:{((IPEndPoint)issuerUrl.LocalEndpoint).Port}/issuer.cer"));
        var options = OwnEndOptions(TunnelMode.Server, leaf, ClientName) with
        {
            BindAddress = new IPEndPoint(IPAddress.Loopback, 0),
            HttpConnectAddress = new HostPort("127.0.0.1", 9),
        };
        await using var server = await TunnelServer.StartAsync(options, NullLoggerFactory.Instance);
        // A handshake too, in case the server end built its certificate's chain only for the first one. Without a
        // certificate of this side's it is refused, once the server's certificate has been shown.
        using var connection = new TcpClient();
        await connection.ConnectAsync(IPAddress.Loopback, server.LocalEndpoint.Port).WaitAsync(Timeouts.Default);
        await using var tls = new SslStream(connection.GetStream());
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = ServerName,
                CertificateChainPolicy = new X509ChainPolicy { DisableCertificateDownloads = true, RevocationMode = X509RevocationMode.NoCheck },
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }).WaitAsync(Timeouts.Default);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
        }
        Assert.False(issuerUrl.Pending(), "the server end connected to the URL in its own certificate");
    }

    /// <summary>In-process options for an end in <paramref name="mode"/> presenting <paramref name="leaf"/>, trusting the test CA.</summary>
    private TunnelOptions OwnEndOptions(TunnelMode mode, PemLeaf leaf, string peerHostname) => new()
    {
        Mode = mode,
        PeerHostname = peerHostname,
        CertFile = _directory.Write($"own-{mode}.crt", leaf.Certificate),
        KeyFile = _directory.Write($"own-{mode}.key", leaf.Key),
        CaFile = _directory.Write("own-ca.pem", _ca.CertificatePem),
    };

    /// <summary>
    /// Presents <paramref name="leaf"/> from this test to <paramref name="checker"/>: as a TLS client to the pair's server
    /// end, or as a TLS server to a new client end; returns once that end has logged its refusal.
    /// </summary>
    private Task PresentToAsync(TunnelPair pair, TunnelMode checker, PemLeaf leaf) =>
        checker == TunnelMode.Server ? ConnectAsStrangerAsync(pair, leaf) : ServeAsStrangerAsync(pair, leaf);

    /// <summary>A TLS client presenting <paramref name="leaf"/> to the pair's server end, until the server end refuses it.</summary>
    private static async Task ConnectAsStrangerAsync(TunnelPair pair, PemLeaf leaf)
    {
        using var connection = new TcpClient();
        await connection.ConnectAsync(IPAddress.Loopback, pair.TunnelPort).WaitAsync(Timeouts.Default);
        await using var tls = new SslStream(connection.GetStream());
        await PresentAsync(tls, leaf, asServer: false);
        await pair.Server.WaitForLineAsync(l => l.Contains("refused a peer presenting", StringComparison.Ordinal));
    }

    /// <summary>A TLS server presenting <paramref name="leaf"/> to a new client end, until that client end refuses it.</summary>
    private async Task ServeAsStrangerAsync(TunnelPair pair, PemLeaf leaf)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var client = End("fooled", _ca.Issue(ClientName, [ClientAuth]), _directory.Write("ca.pem", _ca.CertificatePem), ServerName);
        await using var fooled = pair.StartEnd("fooled.json", TunnelPair.ClientConfig(client, ((IPEndPoint)listener.LocalEndpoint).Port, ""));
        using var connection = await listener.AcceptTcpClientAsync().WaitAsync(Timeouts.Default);
        await using var tls = new SslStream(connection.GetStream());
        await PresentAsync(tls, leaf, asServer: true);
        await fooled.WaitForLineAsync(l => l.Contains("refused a peer presenting", StringComparison.Ordinal));
    }

    /// <summary>One TLS handshake presenting <paramref name="leaf"/>, taking whatever the other side shows and fetching nothing.</summary>
    private static async Task PresentAsync(SslStream tls, PemLeaf leaf, bool asServer)
    {
        using var certificate = X509Certificate2.CreateFromPem(leaf.Certificate, leaf.Key);
        var context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        var offline = new X509ChainPolicy { DisableCertificateDownloads = true, RevocationMode = X509RevocationMode.NoCheck };
        try
        {
            var handshake = asServer
                ? tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = context,
                    ClientCertificateRequired = true,
                    CertificateChainPolicy = offline,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                })
                : tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = ServerName,
                    ClientCertificateContext = context,
                    CertificateChainPolicy = offline,
                    RemoteCertificateValidationCallback = (_, _, _, _) => true,
                });
            await handshake.WaitAsync(Timeouts.Default);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            // The other end refused this certificate: the point.
        }
    }

    /// <summary>
    /// Starts a pair in CA mode, healthy unless told otherwise: the server end presents a certificate from the CA for
    /// <see cref="ServerName"/> good for server authentication and expects <see cref="ClientName"/>; the client end
    /// the other way round. Both trust the one CA (<paramref name="caPem"/> is what their <c>tls.ca</c> holds instead).
    /// </summary>
    private Task<TunnelPair> StartAsync(PemLeaf? server = null, PemLeaf? client = null, string serverExpects = ClientName, string clientExpects = ServerName, string? caPem = null)
    {
        var ca = _directory.Write("ca.pem", caPem ?? _ca.CertificatePem);
        return TunnelPair.StartAsync(
            End("server", server ?? _ca.Issue(ServerName, [ServerAuth]), ca, serverExpects),
            End("client", client ?? _ca.Issue(ClientName, [ClientAuth]), ca, clientExpects));
    }

    private EndTrust End(string name, PemLeaf leaf, string ca, string peerHostname) =>
        EndTrust.Ca(peerHostname, _directory.Write($"{name}.crt", leaf.Certificate), _directory.Write($"{name}.key", leaf.Key), ca);

    /// <summary>
    /// <paramref name="checker"/> logged that it refused the other end (expecting <paramref name="expected"/>, by
    /// default the right name); the tunnel never came up, the client end reports it down, and nothing reached the backend.
    /// </summary>
    private static async Task AssertRefusedAsync(TunnelPair pair, TunnelMode checker, string? expected = null)
    {
        var (refuser, refused) = checker == TunnelMode.Client ? (pair.Client, pair.Server) : (pair.Server, pair.Client);
        expected ??= $"'{(checker == TunnelMode.Client ? ServerName : ClientName)}' issued by the CA in tls.ca";
        var line = await refuser.WaitForLineAsync(l => l.Contains("refused a peer presenting", StringComparison.Ordinal));
        Assert.EndsWith($"expected {expected}", line.TrimEnd(), StringComparison.Ordinal);
        var down = await pair.Client.WaitForLineAsync(l => l.Contains("tunnel down", StringComparison.Ordinal));
        using var http = pair.CreateHttpClient();
        using var response = await http.GetAsync("/").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var status = Assert.Single(response.Headers.GetValues("Proxy-Status"));
        if (checker == TunnelMode.Client)
        {
            Assert.Contains("tunnel down: tls_certificate_error", down, StringComparison.Ordinal);
            Assert.StartsWith("passage; error=tls_certificate_error", status, StringComparison.Ordinal);
            Assert.Contains("the other end's certificate is not the expected peer's", status, StringComparison.Ordinal);
        }
        else
        {
            // The server end refuses by closing after the TLS handshake: all the client end can name.
            Assert.StartsWith("passage; error=connection_terminated", status, StringComparison.Ordinal);
            Assert.Contains("refuses this end's certificate", status, StringComparison.Ordinal);
        }
        Assert.DoesNotContain("refused a peer", refused.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("tunnel up", pair.Client.Output, StringComparison.Ordinal);
        Assert.Equal(0, pair.Backend.Requests);
    }
}
