using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Identity;

namespace Passage.Tests.Identity;

public sealed class CertificatePinTests
{
    [Fact]
    public void AcceptsTheSelfSignedCertificateWithThePinnedKey()
    {
        using var identity = NodeIdentity.Create();
        using var publicOnly = X509CertificateLoader.LoadCertificate(identity.Certificate.RawData);

        Assert.True(CertificatePin.MatchesPin(publicOnly, identity.NodeId));
        Assert.True(CertificatePin.MatchesPin(new X509Certificate(publicOnly), identity.NodeId));
    }

    [Fact]
    public void RefusesNoCertificateAndOtherKeys()
    {
        using var identity = NodeIdentity.Create();
        using var other = NodeIdentity.Create();

        Assert.False(CertificatePin.MatchesPin(null, identity.NodeId));
        Assert.False(CertificatePin.MatchesPin(other.Certificate, identity.NodeId));
    }

    /// <summary>The pinned key, but in a certificate someone else signed: not the node's own certificate, refused.</summary>
    [Fact]
    public void RefusesThePinnedKeyInACertificateIssuedBySomeoneElse()
    {
        using var nodeKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using var issuerKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var pin = NodeId.FromPublicKey(nodeKey);
        var request = new CertificateRequest("CN=passage-node", nodeKey, HashAlgorithmName.SHA256);
        var now = DateTimeOffset.UtcNow;
        // Same name as subject, so only the signature tells it is not self-signed.
        using var issued = request.Create(
            new X500DistinguishedName("CN=passage-node"), X509SignatureGenerator.CreateForECDsa(issuerKey), now.AddDays(-1), now.AddDays(1), [1, 2, 3]);

        Assert.Equal(pin, NodeId.FromCertificate(issued));
        Assert.False(CertificatePin.MatchesPin(issued, pin));
    }

    [Fact]
    public void AcceptsRegardlessOfChainErrorsSuchAsExpiry()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=passage-old", key, HashAlgorithmName.SHA256);
        using var expired = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddYears(-2), DateTimeOffset.UtcNow.AddYears(-1));

        Assert.True(CertificatePin.MatchesPin(expired, NodeId.FromPublicKey(key)));
    }
}
