using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Passage.Identity;

/// <summary>
/// Verifies a TLS peer by its node ID instead of by a certificate authority. The TLS handshake
/// already proves the peer holds the private key of the certificate it presented (RFC 8446
/// §4.4.3, CertificateVerify); the pin proves that key is the expected one.
/// </summary>
public static class CertificatePin
{
    /// <summary>
    /// True only when <paramref name="presented"/> is a self-signed ECDSA certificate whose
    /// SubjectPublicKeyInfo hashes to <paramref name="expected"/>. Chain errors, unknown
    /// issuers and host-name mismatches are ignored: the pin is the trust anchor. A missing
    /// certificate, any other key or a certificate issued by someone else is refused.
    /// </summary>
    /// <remarks>Intended for a <see cref="RemoteCertificateValidationCallback"/>; see <see cref="CreateValidationCallback"/>.</remarks>
    public static bool MatchesPin(X509Certificate? presented, NodeId expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        if (presented is null)
        {
            return false;
        }
        try
        {
            // On .NET the callback receives an X509Certificate2; anything else is re-read from its DER.
            if (presented is X509Certificate2 certificate)
            {
                return Matches(certificate, expected);
            }
            using var copy = X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
            return Matches(copy, expected);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }

    /// <summary>
    /// A callback for <see cref="SslClientAuthenticationOptions.RemoteCertificateValidationCallback"/> or
    /// <see cref="SslServerAuthenticationOptions.RemoteCertificateValidationCallback"/> that accepts exactly
    /// the peer with ID <paramref name="expected"/>, by <see cref="MatchesPin"/>.
    /// </summary>
    public static RemoteCertificateValidationCallback CreateValidationCallback(NodeId expected)
    {
        ArgumentNullException.ThrowIfNull(expected);
        return (_, certificate, _, _) => MatchesPin(certificate, expected);
    }

    /// <summary>
    /// A chain policy that never goes to the network: no download of an issuer the certificate points to (authority
    /// information access, RFC 5280 §4.2.2.1) and no revocation check. The other side chooses the certificate it
    /// presents, and the TLS layer builds its chain before any pin or CA check is asked, so following it would let
    /// a relay make its clients reveal their address to any host it names, or anyone who connects make this end
    /// send requests where they like, holding the handshake meanwhile. Every Passage TLS endpoint uses it.
    /// </summary>
    public static X509ChainPolicy OfflineChainPolicy() => new()
    {
        DisableCertificateDownloads = true,
        RevocationMode = X509RevocationMode.NoCheck,
    };

    private static bool Matches(X509Certificate2 certificate, NodeId expected) =>
        NodeId.FromCertificate(certificate).Equals(expected) && CertificateDer.IsSelfSigned(certificate);
}
