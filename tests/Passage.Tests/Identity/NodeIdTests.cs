using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Identity;

public sealed class NodeIdTests
{
    [Fact]
    public void IsLowerCaseBase32OfSha256OverTheSubjectPublicKeyInfo()
    {
        using var identity = NodeIdentity.Create();
        var spki = identity.Certificate.PublicKey.ExportSubjectPublicKeyInfo();

        var text = identity.NodeId.ToString();

        Assert.Equal(NodeId.TextLength, text.Length);
        Assert.Matches("^[a-z2-7]{52}$", text);
        Assert.Equal(Base32.Encode(SHA256.HashData(spki)), text);
        Assert.Equal(SHA256.HashData(spki), identity.NodeId.Hash.ToArray());
    }

    [Fact]
    public void CertificatePublicKeyAndSubjectPublicKeyInfoGiveTheSameId()
    {
        using var identity = NodeIdentity.Create();
        using var key = identity.Certificate.GetECDsaPrivateKey()!;

        Assert.Equal(identity.NodeId, NodeId.FromCertificate(identity.Certificate));
        Assert.Equal(identity.NodeId, NodeId.FromPublicKey(key));
        Assert.Equal(identity.NodeId, NodeId.FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo()));
    }

    [Fact]
    public void ParsesItsOwnTextInEitherCaseToAnEqualId()
    {
        using var identity = NodeIdentity.Create();
        var text = identity.NodeId.ToString();

        Assert.True(NodeId.TryParse(text, out var lower));
        Assert.True(NodeId.TryParse(text.ToUpperInvariant(), out var upper));

        Assert.Equal(identity.NodeId, lower);
        Assert.Equal(identity.NodeId, upper);
        Assert.True(identity.NodeId == upper);
        Assert.Equal(identity.NodeId.GetHashCode(), upper.GetHashCode());
        Assert.Equal(text, upper.ToString());
    }

    [Fact]
    public void DifferentKeysHaveDifferentIds()
    {
        using var a = NodeIdentity.Create();
        using var b = NodeIdentity.Create();

        Assert.NotEqual(a.NodeId, b.NodeId);
        Assert.True(a.NodeId != b.NodeId);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("mzxw6ytboi")] // valid base32, too short
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")] // 51
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")] // 53
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa=")] // padding
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1")] // not in the alphabet
    [InlineData("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab")] // non-zero tail bits
    public void RefusesAnythingButFiftyTwoCanonicalCharacters(string? text)
    {
        Assert.False(NodeId.TryParse(text, out var id));
        Assert.Null(id);
        if (text is not null)
        {
            Assert.Contains("not a node ID", Assert.Throws<FormatException>(() => NodeId.Parse(text)).Message);
        }
    }

    [Fact]
    public void FromHashRequiresThirtyTwoBytes()
    {
        Assert.Throws<ArgumentException>(() => NodeId.FromHash(new byte[31]));
        Assert.Equal(new string('a', 52), NodeId.FromHash(new byte[32]).ToString());
    }

    /// <summary>
    /// The whole definition checked by independent tools: openssl extracts the DER
    /// SubjectPublicKeyInfo and hashes it, coreutils' base32 encodes it.
    /// </summary>
    [OpenSslFact]
    public async Task MatchesOpenSslFromTheCertificateAndFromTheKey()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.File("node.pem");
        using (var identity = NodeIdentity.Create(["relay.example"]))
        {
            identity.Save(path, overwrite: false);
        }
        var expected = NodeIdentity.ReadNodeId(path).ToString();

        var fromCertificate = await OpenSsl.PipelineAsync(
            $"openssl x509 -in '{path}' -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base32 -w0 | tr -d = | tr A-Z a-z");
        var fromKey = await OpenSsl.PipelineAsync(
            $"openssl pkey -in '{path}' -pubout -outform DER | openssl dgst -sha256 -binary | base32 -w0 | tr -d = | tr A-Z a-z");

        Assert.Equal(expected, fromCertificate);
        Assert.Equal(expected, fromKey);
    }

    /// <summary>Keys made by openssl, in both PKCS#8 and SEC1 form, get the ID openssl computes.</summary>
    [OpenSslFact]
    public async Task ReadsKeysMadeByOpenSsl()
    {
        using var directory = new TemporaryDirectory();
        var pkcs8 = directory.File("pkcs8.pem");
        var sec1 = directory.File("sec1.pem");
        await OpenSsl.PipelineAsync($"openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '{pkcs8}'");
        await OpenSsl.PipelineAsync($"openssl ecparam -name prime256v1 -genkey -noout -out '{sec1}'");

        foreach (var path in new[] { pkcs8, sec1 })
        {
            var expected = await OpenSsl.PipelineAsync(
                $"openssl pkey -in '{path}' -pubout -outform DER | openssl dgst -sha256 -binary | base32 -w0 | tr -d = | tr A-Z a-z");
            Assert.Equal(expected, NodeIdentity.ReadNodeId(path).ToString());
        }
    }
}
