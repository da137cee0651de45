using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Passage.Identity;

namespace Passage.Tunnel;

/// <summary>
/// Decides whether the certificate the other end presented is the one peer this end talks to: by its
/// node ID (<c>general.peer</c>, <see cref="CertificatePin.MatchesPin"/>), or issued by the CA of
/// <c>tls.ca</c> for the name <c>general.peerHostname</c>. Used on both sides of the mutual TLS handshake.
/// </summary>
/// <remarks>
/// In CA mode the other end's certificate must chain to a root certificate of <c>tls.ca</c>, through the intermediate
/// CA certificates <c>tls.ca</c> also holds if the CA has any (the ends send only their own certificate; the system's
/// trusted roots play no part); be within its validity period; be good for the role the other end plays (extended key
/// usage, RFC 5280 §4.2.1.12: server authentication when a client end checks the server, client authentication when
/// the server end checks a client; a certificate without the extension is good for both); and carry
/// <c>general.peerHostname</c> in its subject alternative names (a DNS name, possibly a wildcard for one label, or an
/// IP address; the subject's common name is not looked at: RFC 9525 no longer counts it as a name). The same rules
/// hold on both ends.
/// </remarks>
internal sealed class PeerVerifier : IDisposable
{
    /// <summary>A CA file holds a root and perhaps intermediates, a few kilobytes each; a whole system bundle is under 1 MiB.</summary>
    private const int MaxCaFileBytes = 4 * 1024 * 1024;

    private readonly NodeId? _pin;
    private readonly X509Certificate2Collection? _roots;
    private readonly string? _hostname;
    private readonly string? _peerUsage;

    private PeerVerifier(NodeId? pin, X509Certificate2Collection? roots, string? hostname, string? peerUsage)
    {
        _pin = pin;
        _roots = roots;
        _hostname = hostname;
        _peerUsage = peerUsage;
    }

    /// <summary>Who is expected, for log lines: the node ID or the CA-issued name.</summary>
    /// <summary>
    /// What a presented certificate is, for the log line that refuses it: its node ID (what a pin names) and, when
    /// it carries DNS names, those (what CA mode checks).
    /// </summary>
    public static string Describe(X509Certificate? presented)
    {
        if (presented is null)
        {
            return "no certificate";
        }
        try
        {
            using var owned = presented as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(presented.GetRawCertData()) : null;
            var certificate = owned ?? (X509Certificate2)presented;
            var names = certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().SelectMany(e => e.EnumerateDnsNames()).ToList();
            var id = $"node ID {NodeId.FromCertificate(certificate)}";
            return names.Count == 0 ? id : $"{id} (names {string.Join(", ", names)})";
        }
        catch (CryptographicException)
        {
            return "an unreadable certificate";
        }
    }

    public string Expected => _pin is not null ? $"node ID {_pin}" : $"'{_hostname}' issued by the CA in tls.ca";

    /// <summary>The verifier the options ask for.</summary>
    /// <exception cref="CryptographicException">The CA file holds no PEM certificate, or no root certificate.</exception>
    /// <exception cref="InvalidDataException">The CA file is not a regular file (a FIFO, a device), or is too large.</exception>
    /// <exception cref="IOException">The CA file cannot be read.</exception>
    public static PeerVerifier Create(TunnelOptions options)
    {
        if (options.Peer is { } pin)
        {
            return new PeerVerifier(pin, null, null, null);
        }
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(TunnelCredentials.ReadPem(options.CaFile ?? throw new InvalidOperationException("neither general.peer nor tls.ca is set"), "tls.ca", MaxCaFileBytes));
        if (!roots.Any(IsRoot))
        {
            // An intermediate CA's certificate alone anchors nothing: every peer would be refused.
            DisposeAll(roots);
            throw new CryptographicException(roots.Count == 0
                ? $"'{options.CaFile}' holds no certificate"
                : $"'{options.CaFile}' holds no root certificate (one issued by itself): put the CA's root there, with any intermediate CA certificates");
        }
        // The other end plays the opposite role in the handshake.
        var peerUsage = UsageFor(options.Mode == TunnelMode.Server ? TunnelMode.Client : TunnelMode.Server);
        return new PeerVerifier(null, roots, options.PeerHostname, peerUsage);
    }

    private static bool IsRoot(X509Certificate2 certificate) => certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData);

    /// <summary>
    /// The extended key usage (RFC 5280 §4.2.1.12) a certificate needs to play <paramref name="role"/> in the
    /// handshake: server authentication for the server end, client authentication for a client end.
    /// </summary>
    public static string UsageFor(TunnelMode role) => role == TunnelMode.Server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2";


    /// <summary>True when <paramref name="presented"/> is the expected peer.</summary>
    public bool Verify(System.Security.Cryptography.X509Certificates.X509Certificate? presented)
    {
        if (_pin is not null)
        {
            return CertificatePin.MatchesPin(presented, _pin);
        }
        if (presented is null || _roots is null || _hostname is null || _peerUsage is null)
        {
            return false;
        }
        try
        {
            using var owned = presented as X509Certificate2 is null ? X509CertificateLoader.LoadCertificate(presented.GetRawCertData()) : null;
            var certificate = owned ?? (X509Certificate2)presented;
            using var chain = new X509Chain();
            chain.ChainPolicy = CertificatePin.OfflineChainPolicy();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
            chain.ChainPolicy.ApplicationPolicy.Add(new Oid(_peerUsage));
            return chain.Build(certificate) && certificate.MatchesHostname(_hostname, allowWildcards: true, allowCommonName: false);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (_roots is not null)
        {
            DisposeAll(_roots);
        }
    }

    private static void DisposeAll(X509Certificate2Collection certificates)
    {
        foreach (var certificate in certificates)
        {
            certificate.Dispose();
        }
    }
}
