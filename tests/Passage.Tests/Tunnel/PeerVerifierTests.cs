using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// CA mode's check of the other end's certificate, one rule at a time: issued by the CA of <c>tls.ca</c> (and only
/// that CA), in its validity period, named <c>general.peerHostname</c> in its SAN, and good for the peer's role.
/// </summary>
public sealed class PeerVerifierTests : IDisposable
{
    private const string ServerName = "server.tunnel.test";
    private const string ClientName = "client.tunnel.test";

    private readonly TemporaryDirectory _directory = new();
    private readonly TestCertificateAuthority _ca = TestCertificateAuthority.Create("Passage Test CA");

    public void Dispose()
    {
        _ca.Dispose();
        _directory.Dispose();
    }

    /// <summary>
    /// The check an end in <paramref name="mode"/> makes of the other end, expecting <paramref name="peerHostname"/>, with
    /// <c>tls.ca</c> holding <paramref name="caPem"/> (by default the test CA's certificate).
    /// </summary>
    private PeerVerifier Verifier(TunnelMode mode, string peerHostname, string? caPem = null) => PeerVerifier.Create(new TunnelOptions
    {
        Mode = mode,
        PeerHostname = peerHostname,
        CaFile = _directory.Write("ca.pem", caPem ?? _ca.CertificatePem),
        KeyFile = "unused.pem",
    });

    private static X509Certificate2 Load(PemLeaf leaf) => X509Certificate2.CreateFromPem(leaf.Certificate);

    [Fact]
    public void A_refused_certificate_is_described_by_its_node_ID_and_its_names()
    {
        var leaf = _ca.Issue("peer.test", [TestCertificateAuthority.ServerAuth]);
        using var certificate = X509Certificate2.CreateFromPem(leaf.Certificate, leaf.Key);
        Assert.Equal($"node ID {Passage.Identity.NodeId.FromCertificate(certificate)} (names peer.test)", PeerVerifier.Describe(certificate));
        Assert.Equal("no certificate", PeerVerifier.Describe(null));
    }

    [Theory]
    [InlineData(TunnelMode.Client, ServerName, TestCertificateAuthority.ServerAuth, true)]
    [InlineData(TunnelMode.Server, ClientName, TestCertificateAuthority.ClientAuth, true)]
    [InlineData(TunnelMode.Client, ServerName, TestCertificateAuthority.ClientAuth, false)]
    [InlineData(TunnelMode.Server, ClientName, TestCertificateAuthority.ServerAuth, false)]
    public void A_certificate_from_the_CA_for_the_name_is_accepted_only_for_the_role_the_other_end_plays(TunnelMode mode, string name, string usage, bool accepted)
    {
        // A client end checks a server, which must be good for server authentication; a server end checks a client.
        using var verifier = Verifier(mode, name);
        using var certificate = Load(_ca.Issue(name, [usage]));
        Assert.Equal(accepted, verifier.Verify(certificate));
    }

    [Theory]
    [InlineData(TunnelMode.Client, ServerName)]
    [InlineData(TunnelMode.Server, ClientName)]
    public void A_certificate_good_for_both_roles_or_without_usages_is_accepted(TunnelMode mode, string name)
    {
        using var verifier = Verifier(mode, name);
        using var both = Load(_ca.Issue(name, [TestCertificateAuthority.ServerAuth, TestCertificateAuthority.ClientAuth]));
        using var unrestricted = Load(_ca.Issue(name, []));
        Assert.True(verifier.Verify(both));
        Assert.True(verifier.Verify(unrestricted));
    }

    [Theory]
    [InlineData(TunnelMode.Client, "from another CA")]
    [InlineData(TunnelMode.Server, "from another CA")]
    [InlineData(TunnelMode.Client, "expired")]
    [InlineData(TunnelMode.Server, "expired")]
    [InlineData(TunnelMode.Client, "for another name")]
    [InlineData(TunnelMode.Server, "for another name")]
    public void A_certificate_is_refused_when_it_is(TunnelMode mode, string flaw)
    {
        using var other = TestCertificateAuthority.Create("Passage Test CA");
        var leaf = flaw switch
        {
            "from another CA" => other.Issue(ServerName, []),
            "expired" => _ca.Issue(ServerName, [], notAfter: DateTimeOffset.UtcNow.AddDays(-1)),
            _ => _ca.Issue("other.tunnel.test", []),
        };
        using var verifier = Verifier(mode, ServerName);
        using var certificate = Load(leaf);
        Assert.False(verifier.Verify(certificate));
    }

    [Theory]
    [InlineData("the root", false)]
    [InlineData("the root and the intermediate", true)]
    [InlineData("the intermediate and the root", true)]
    public void A_certificate_from_an_intermediate_CA_is_accepted_when_tls_ca_holds_it_with_the_root(string caHolds, bool accepted)
    {
        // The ends send only their own certificate, so the intermediate comes from tls.ca; the root alone anchors trust.
        using var intermediate = _ca.IssueIntermediate("Passage Test Intermediate");
        var pem = caHolds switch
        {
            "the root" => _ca.CertificatePem,
            "the root and the intermediate" => _ca.CertificatePem + intermediate.CertificatePem,
            _ => intermediate.CertificatePem + _ca.CertificatePem,
        };
        using var verifier = Verifier(TunnelMode.Server, ClientName, pem);
        using var certificate = Load(intermediate.Issue(ClientName, [TestCertificateAuthority.ClientAuth]));
        Assert.Equal(accepted, verifier.Verify(certificate));
    }

    [Fact]
    public void A_tls_ca_without_a_root_certificate_is_refused_at_start()
    {
        // An intermediate is no trust anchor: nothing would ever chain to it, so say so instead of refusing every peer.
        using var intermediate = _ca.IssueIntermediate("Passage Test Intermediate");
        var error = Assert.Throws<CryptographicException>(() => Verifier(TunnelMode.Server, ClientName, intermediate.CertificatePem));
        Assert.Contains("no root", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public void The_name_must_be_in_the_SAN_not_only_in_the_subject(TunnelMode mode)
    {
        using var verifier = Verifier(mode, ServerName);
        using var bySubject = Load(_ca.Issue(null, [], commonName: ServerName));
        using var bySan = Load(_ca.Issue(ServerName, [], commonName: "something else"));
        Assert.False(verifier.Verify(bySubject));
        Assert.True(verifier.Verify(bySan));
    }

    [Theory]
    [InlineData(TunnelMode.Client)]
    [InlineData(TunnelMode.Server)]
    public void Checking_a_stranger_fetches_nothing_its_certificate_points_to(TunnelMode mode)
    {
        // A certificate from an unknown CA naming where its issuer may be downloaded (authority information access):
        // the check fails without fetching it (TunnelCaTests has the handshake's own check too).
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var url = new Uri($"http://127.0.0.1:{((IPEndPoint)listener.LocalEndpoint).Port}/issuer.cer");
        using var other = TestCertificateAuthority.Create("Stranger CA");
        using var verifier = Verifier(mode, ServerName);
        using var certificate = Load(other.Issue(ServerName, [], issuerUrl: url));
        Assert.False(verifier.Verify(certificate));
        Assert.False(listener.Pending(), "the check connected to the URL in the certificate");
    }
}
