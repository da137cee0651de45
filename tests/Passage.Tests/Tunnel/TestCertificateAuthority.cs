using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Passage.Tests.Tunnel;

/// <summary>A leaf certificate and its private key as PEM text (what <c>tls.cert</c> and <c>tls.key</c> hold).</summary>
internal sealed record PemLeaf(string Certificate, string Key);

/// <summary>A throwaway certificate authority (ECDSA P-256, valid from a year ago for a year) that issues leaf certificates.</summary>
internal sealed class TestCertificateAuthority : IDisposable
{
    // RFC 5280 §4.2.1.12.
    public const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    public const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private readonly X509Certificate2 _certificate;

    private TestCertificateAuthority(X509Certificate2 certificate) => _certificate = certificate;

    /// <summary>The CA's certificate as PEM, ending in a newline as a file would (what <c>tls.ca</c> holds).</summary>
    public string CertificatePem => _certificate.ExportCertificatePem() + "\n";

    public static TestCertificateAuthority Create(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var now = DateTimeOffset.UtcNow;
        return new TestCertificateAuthority(CaRequest(name, key).CreateSelfSigned(now.AddYears(-1), now.AddYears(1)));
    }

    /// <summary>An intermediate CA issued by this one (valid from a month ago for most of a year).</summary>
    public TestCertificateAuthority IssueIntermediate(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = CaRequest(name, key);
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var now = DateTimeOffset.UtcNow;
        using var issued = request.Create(_certificate, now.AddDays(-30), now.AddDays(300), NewSerialNumber());
        return new TestCertificateAuthority(issued.CopyWithPrivateKey(key));
    }

    private static CertificateRequest CaRequest(string name, ECDsa key)
    {
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        return request;
    }

    /// <summary>16 random bytes, positive (RFC 5280 §4.1.2.2).</summary>
    private static byte[] NewSerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        return serial;
    }

    /// <summary>
    /// A leaf for <paramref name="dnsName"/> (its SAN; the subject's CN is <paramref name="commonName"/>, by default the
    /// same name), good for the extended key usages given (none: no EKU extension), valid from a day ago for a week
    /// unless <paramref name="notAfter"/> says otherwise. A null <paramref name="dnsName"/> leaves the SAN out.
    /// </summary>
    public PemLeaf Issue(string? dnsName, string[] usages, DateTimeOffset? notAfter = null, string? commonName = null, Uri? issuerUrl = null)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={commonName ?? dnsName ?? "passage-test-leaf"}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        if (usages.Length > 0)
        {
            var oids = new OidCollection();
            foreach (var usage in usages)
            {
                oids.Add(new Oid(usage));
            }
            request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(oids, critical: false));
        }
        if (dnsName is not null)
        {
            var names = new SubjectAlternativeNameBuilder();
            names.AddDnsName(dnsName);
            request.CertificateExtensions.Add(names.Build());
        }
        if (issuerUrl is not null)
        {
            request.CertificateExtensions.Add(new X509AuthorityInformationAccessExtension(null, [issuerUrl.AbsoluteUri]));
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        var now = DateTimeOffset.UtcNow;
        var end = notAfter ?? now.AddDays(7);
        using var leaf = request.Create(_certificate, (end < now ? end : now).AddDays(-1), end, NewSerialNumber());
        return new PemLeaf(leaf.ExportCertificatePem() + "\n", key.ExportPkcs8PrivateKeyPem() + "\n");
    }

    public void Dispose() => _certificate.Dispose();
}
