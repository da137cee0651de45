using Passage.Identity;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Passage.Relay.Auth;

namespace Passage.Tests.Relay.Auth;

public sealed class ClientIdPolicyTests
{
    private static X509Certificate2 SelfSigned(ECDsa key, string name = "CN=passage-client")
    {
        var request = new CertificateRequest(name, key, HashAlgorithmName.SHA256);
        using X509Certificate2 withKey = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddDays(1));

        // What the server sees of a client: the certificate alone, without its private key.
        return X509CertificateLoader.LoadCertificate(withKey.RawData);
    }

    private static string IdOf(ECDsa key) => NodeId.FromPublicKey(key).ToString();

    private static ClientIdPolicy Policy(params string[] ids)
    {
        var errors = new List<string>();
        ClientIdPolicy policy = ClientIdPolicy.Parse(ids, "relay.clientIds", errors);
        Assert.Empty(errors);
        return policy;
    }

    [Fact]
    public void No_ids_means_mutual_tls_is_not_required()
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 certificate = SelfSigned(key);
        ClientIdPolicy policy = Policy();

        Assert.False(policy.RequiresClientCertificate);
        Assert.True(policy.Allows(null));
        Assert.True(policy.Allows(certificate));
        Assert.False(ClientIdPolicy.None.RequiresClientCertificate);
    }

    [Fact]
    public void Allows_a_certificate_whose_key_has_a_listed_id()
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using ECDsa other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 certificate = SelfSigned(key);
        using X509Certificate2 stranger = SelfSigned(other);
        string id = IdOf(key);
        Assert.Equal(NodeId.TextLength, id.Length);

        using ECDsa third = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        ClientIdPolicy policy = Policy(IdOf(third), id);
        Assert.True(policy.RequiresClientCertificate);
        Assert.Equal(2, policy.Count);
        Assert.True(policy.Allows(certificate));
        Assert.False(policy.Allows(stranger));
        Assert.False(policy.Allows(null));
    }

    [Fact]
    public void The_pin_is_the_key_so_a_renewed_certificate_is_still_allowed()
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        using X509Certificate2 first = SelfSigned(key, "CN=first");
        using X509Certificate2 renewed = SelfSigned(key, "CN=renewed");
        ClientIdPolicy policy = Policy(IdOf(key));
        Assert.True(policy.Allows(first));
        Assert.True(policy.Allows(renewed));
    }

    [Fact]
    public void Bad_ids_are_reported_at_once_naming_their_key()
    {
        using ECDsa key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        string id = IdOf(key);
        var errors = new List<string>();
        ClientIdPolicy policy = ClientIdPolicy.Parse(
            [id, "short", id.ToUpperInvariant(), id + "@relay.example:443", id[..^1] + "1", id[..^1] + "b", ""],
            "relay.clientIds",
            errors);

        // Upper case is the same ID (base32 is case-insensitive on input).
        Assert.Equal(5, errors.Count);
        Assert.StartsWith("relay.clientIds[1]: 'short' is not a node ID (52 base32 characters", errors[0], StringComparison.Ordinal);
        Assert.EndsWith("without @host:port", errors[1], StringComparison.Ordinal);
        Assert.StartsWith("relay.clientIds[4]: ", errors[2], StringComparison.Ordinal); // '1' is not base32
        Assert.StartsWith("relay.clientIds[5]: ", errors[3], StringComparison.Ordinal); // non-zero padding bits
        Assert.StartsWith("relay.clientIds[6]: ", errors[4], StringComparison.Ordinal);
        Assert.Equal(2, policy.Count);
    }
}
