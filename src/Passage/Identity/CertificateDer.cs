using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Passage.Identity;

/// <summary>
/// The few pieces of an X.509 certificate's DER (RFC 5280 §4.1) that node IDs and pins need
/// and that <see cref="X509Certificate2"/> does not hand out as the exact encoded bytes.
/// </summary>
internal static class CertificateDer
{
    // RFC 5758 §3.2: ecdsa-with-SHA256/384/512.
    private const string EcdsaWithSha256 = "1.2.840.10045.4.3.2";
    private const string EcdsaWithSha384 = "1.2.840.10045.4.3.3";
    private const string EcdsaWithSha512 = "1.2.840.10045.4.3.4";

    /// <summary>
    /// The subjectPublicKeyInfo exactly as encoded in the certificate, the bytes a node ID hashes.
    /// Throws <see cref="CryptographicException"/> if the certificate is not well-formed DER.
    /// </summary>
    public static byte[] ReadSubjectPublicKeyInfo(ReadOnlyMemory<byte> certificate)
    {
        try
        {
            // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue }
            var tbs = new AsnReader(certificate, AsnEncodingRules.DER).ReadSequence().ReadSequence();
            // TBSCertificate ::= SEQUENCE { [0] version OPTIONAL, serialNumber, signature,
            //                               issuer, validity, subject, subjectPublicKeyInfo, ... }
            if (tbs.PeekTag().HasSameClassAndValue(new Asn1Tag(TagClass.ContextSpecific, 0)))
            {
                tbs.ReadEncodedValue();
            }
            tbs.ReadIntegerBytes();
            tbs.ReadSequence();
            tbs.ReadSequence();
            tbs.ReadSequence();
            tbs.ReadSequence();
            return tbs.ReadEncodedValue().ToArray();
        }
        catch (AsnContentException e)
        {
            throw new CryptographicException("The certificate is not valid DER.", e);
        }
    }

    /// <summary>
    /// True when the certificate names itself as issuer and its ECDSA signature verifies with
    /// its own public key. Key usage is not consulted: a node certificate is a leaf
    /// (keyCertSign unset) that is trusted through its pin, not as a CA.
    /// </summary>
    public static bool IsSelfSigned(X509Certificate2 certificate)
    {
        if (!certificate.SubjectName.RawData.AsSpan().SequenceEqual(certificate.IssuerName.RawData))
        {
            return false;
        }
        using var publicKey = certificate.GetECDsaPublicKey();
        if (publicKey is null)
        {
            return false;
        }
        try
        {
            var reader = new AsnReader(certificate.RawData, AsnEncodingRules.DER).ReadSequence();
            var tbs = reader.ReadEncodedValue();
            var algorithm = reader.ReadSequence().ReadObjectIdentifier();
            var signature = reader.ReadBitString(out var unusedBits);
            HashAlgorithmName? hash = algorithm switch
            {
                EcdsaWithSha256 => HashAlgorithmName.SHA256,
                EcdsaWithSha384 => HashAlgorithmName.SHA384,
                EcdsaWithSha512 => HashAlgorithmName.SHA512,
                _ => null,
            };
            return unusedBits == 0
                && hash is not null
                && publicKey.VerifyData(tbs.Span, signature, hash.Value, DSASignatureFormat.Rfc3279DerSequence);
        }
        catch (Exception e) when (e is AsnContentException or CryptographicException)
        {
            return false;
        }
    }
}
