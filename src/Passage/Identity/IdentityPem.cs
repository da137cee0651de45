using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Passage.Configuration;

namespace Passage.Identity;

/// <summary>
/// The contents of a PEM identity file (RFC 7468): at most one private key
/// (<c>PRIVATE KEY</c>, PKCS#8 per RFC 7468 §10; or <c>EC PRIVATE KEY</c>, SEC1 per RFC 5915),
/// the first <c>CERTIFICATE</c> (RFC 7468 §5; later ones, a chain, are ignored) and the first
/// <c>PUBLIC KEY</c> (RFC 7468 §13). Other labels are skipped. Every key must be ECDSA P-256;
/// anything else is an <see cref="InvalidDataException"/> whose message names the file.
/// </summary>
internal sealed class IdentityPem : IDisposable
{
    /// <summary>Identity files are a few hundred bytes; anything this large is not one.</summary>
    private const int MaxFileBytes = 1024 * 1024;

    // RFC 5480 §2.1.1 (id-ecPublicKey) and §2.1.1.1 (secp256r1).
    private const string IdEcPublicKey = "1.2.840.10045.2.1";
    private const string Secp256r1 = "1.2.840.10045.3.1.7";

    private IdentityPem(string path) => Path = path;

    /// <summary>The file as named by the caller, for messages.</summary>
    public string Path { get; }

    /// <summary>The private key, if the file has one; checked to be P-256.</summary>
    public ECDsa? PrivateKey { get; private set; }

    /// <summary>The first certificate, if any; its key checked to be P-256.</summary>
    public X509Certificate2? Certificate { get; private set; }

    /// <summary>The DER SubjectPublicKeyInfo of the first public key, if any; checked to be P-256.</summary>
    public byte[]? PublicKey { get; private set; }

    /// <summary>Reads and checks <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not a usable identity, key or certificate file: not a regular
    /// file (a FIFO, a device, a directory; refused before it is opened), too large, or not the PEM it should be.</exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static IdentityPem Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] bytes;
        try
        {
            bytes = InputFile.ReadAll(path, MaxFileBytes);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new FileNotFoundException($"'{path}' does not exist.", path, e);
        }
        catch (InputFileException e)
        {
            throw new InvalidDataException($"{e.Message}; an identity file is a regular file of a few hundred bytes.", e);
        }

        var chars = Encoding.UTF8.GetChars(bytes);
        var result = new IdentityPem(path);
        try
        {
            result.Parse(chars);
            return result;
        }
        catch
        {
            result.Dispose();
            throw;
        }
        finally
        {
            // The private key was in these buffers.
            CryptographicOperations.ZeroMemory(bytes);
            Array.Clear(chars);
        }
    }

    /// <summary>True when <paramref name="a"/> and <paramref name="b"/> are the same public key.</summary>
    public static bool SameKey(ECDsa a, ECDsa b)
    {
        var p = a.ExportParameters(includePrivateParameters: false);
        var q = b.ExportParameters(includePrivateParameters: false);
        return p.Q.X.AsSpan().SequenceEqual(q.Q.X) && p.Q.Y.AsSpan().SequenceEqual(q.Q.Y);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        PrivateKey?.Dispose();
        Certificate?.Dispose();
    }

    private void Parse(ReadOnlySpan<char> text)
    {
        var foundAny = false;
        while (PemEncoding.TryFind(text, out var fields))
        {
            foundAny = true;
            var label = text[fields.Label];
            var der = new byte[fields.DecodedDataLength];
            try
            {
                if (!Convert.TryFromBase64Chars(text[fields.Base64Data], der, out var written) || written != der.Length)
                {
                    throw new InvalidDataException($"'{Path}' has a '{label}' block that is not valid base64.");
                }
                Add(label, der);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(der);
            }
            text = text[fields.Location.End..];
        }
        if (!foundAny)
        {
            throw new InvalidDataException($"'{Path}' is not a PEM file: it has no '-----BEGIN ...-----' block.");
        }
    }

    private void Add(ReadOnlySpan<char> label, byte[] der)
    {
        switch (label)
        {
            case "PRIVATE KEY":
                SetPrivateKey(label, der, pkcs8: true);
                break;
            case "EC PRIVATE KEY":
                SetPrivateKey(label, der, pkcs8: false);
                break;
            case "ENCRYPTED PRIVATE KEY":
                throw new InvalidDataException($"The private key in '{Path}' is encrypted; Passage reads unencrypted PKCS#8 keys kept in a file only its owner can read.");
            case "CERTIFICATE" when Certificate is null:
                Certificate = ReadCertificate(der);
                break;
            case "PUBLIC KEY" when PublicKey is null:
                using (var key = ReadPublicKey(der))
                {
                    PublicKey = der.ToArray();
                }
                break;
        }
    }

    private void SetPrivateKey(ReadOnlySpan<char> label, byte[] der, bool pkcs8)
    {
        if (PrivateKey is not null)
        {
            throw new InvalidDataException($"'{Path}' has more than one private key; an identity file has exactly one.");
        }
        if (pkcs8 && ReadPkcs8Algorithm(der) is { } algorithm && algorithm != IdEcPublicKey)
        {
            throw new InvalidDataException($"The private key in '{Path}' is {DescribeAlgorithm(algorithm)}, not ECDSA P-256.");
        }
        var key = ECDsa.Create();
        try
        {
            if (pkcs8)
            {
                key.ImportPkcs8PrivateKey(der, out _);
            }
            else
            {
                key.ImportECPrivateKey(der, out _);
            }
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new InvalidDataException($"The '{label}' block in '{Path}' is not a valid ECDSA private key: {e.Message}", e);
        }
        if (!IsP256(key))
        {
            var size = key.KeySize;
            key.Dispose();
            throw new InvalidDataException($"The private key in '{Path}' is ECDSA on a {size}-bit curve, not P-256.");
        }
        PrivateKey = key;
    }

    private X509Certificate2 ReadCertificate(byte[] der)
    {
        X509Certificate2 certificate;
        try
        {
            certificate = X509CertificateLoader.LoadCertificate(der);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException($"The certificate in '{Path}' is not valid: {e.Message}", e);
        }
        using var key = certificate.GetECDsaPublicKey();
        if (key is null || !IsP256(key))
        {
            var algorithm = certificate.PublicKey.Oid.Value;
            certificate.Dispose();
            throw new InvalidDataException(
                key is null
                    ? $"The certificate in '{Path}' has {DescribeAlgorithm(algorithm)}, not ECDSA P-256."
                    : $"The certificate in '{Path}' has an ECDSA key on a {key.KeySize}-bit curve, not P-256.");
        }
        return certificate;
    }

    private ECDsa ReadPublicKey(byte[] der)
    {
        var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(der, out var read);
            if (read != der.Length)
            {
                throw new CryptographicException("trailing data after the key");
            }
        }
        catch (CryptographicException e)
        {
            key.Dispose();
            throw new InvalidDataException($"The public key in '{Path}' is not an ECDSA P-256 key: {e.Message}", e);
        }
        if (!IsP256(key))
        {
            var size = key.KeySize;
            key.Dispose();
            throw new InvalidDataException($"The public key in '{Path}' is ECDSA on a {size}-bit curve, not P-256.");
        }
        return key;
    }

    private static bool IsP256(ECDsa key)
    {
        var curve = key.ExportParameters(includePrivateParameters: false).Curve;
        return curve.IsNamed
            && (curve.Oid.Value == Secp256r1 || curve.Oid.FriendlyName is "nistP256" or "ECDSA_P256" or "prime256v1" or "secp256r1");
    }

    /// <summary>The algorithm OID of a PKCS#8 PrivateKeyInfo (RFC 5208 §5), or null if it cannot be read.</summary>
    private static string? ReadPkcs8Algorithm(byte[] der)
    {
        try
        {
            // PrivateKeyInfo ::= SEQUENCE { version INTEGER, privateKeyAlgorithm AlgorithmIdentifier, privateKey OCTET STRING, ... }
            var info = new AsnReader(der, AsnEncodingRules.BER).ReadSequence();
            info.ReadIntegerBytes();
            return info.ReadSequence().ReadObjectIdentifier();
        }
        catch (AsnContentException)
        {
            return null;
        }
    }

    private static string DescribeAlgorithm(string? oid) => oid switch
    {
        "1.2.840.113549.1.1.1" => "an RSA key",
        "1.2.840.10040.4.1" => "a DSA key",
        "1.3.101.112" => "an Ed25519 key",
        "1.3.101.113" => "an Ed448 key",
        IdEcPublicKey => "an EC key",
        _ => $"a key of algorithm {oid ?? "(unknown)"}",
    };
}
