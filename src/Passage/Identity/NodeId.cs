using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Passage.Identity;

/// <summary>
/// A node's ID: SHA-256 over the DER SubjectPublicKeyInfo of its certificate (the same hash as
/// an RFC 7469 §2.4 "pin-sha256"), written as 52 characters of lower-case RFC 4648 base32
/// without padding. IDs are public; peers are addressed and pinned by them.
/// </summary>
/// <remarks>Equality is by value and, since IDs are used as pins, constant-time.</remarks>
public sealed class NodeId : IEquatable<NodeId>
{
    /// <summary>Length of the hash in bytes (SHA-256).</summary>
    public const int HashLength = SHA256.HashSizeInBytes;

    /// <summary>Length of the text form in characters.</summary>
    public const int TextLength = 52;

    private readonly byte[] _hash;
    private readonly string _text;

    private NodeId(byte[] hash)
    {
        _hash = hash;
        _text = Base32.Encode(hash);
    }

    /// <summary>The 32-byte SHA-256 hash this ID stands for.</summary>
    public ReadOnlySpan<byte> Hash => _hash;

    /// <summary>The ID of a DER-encoded SubjectPublicKeyInfo (RFC 5280 §4.1.2.7), hashed exactly as given.</summary>
    public static NodeId FromSubjectPublicKeyInfo(ReadOnlySpan<byte> subjectPublicKeyInfo) =>
        new(SHA256.HashData(subjectPublicKeyInfo));

    /// <summary>The ID of a public key (or the public half of a private key), from its SubjectPublicKeyInfo encoding.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="key"/> is null.</exception>
    public static NodeId FromPublicKey(AsymmetricAlgorithm key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return FromSubjectPublicKeyInfo(key.ExportSubjectPublicKeyInfo());
    }

    /// <summary>The ID of a certificate: the hash of its subjectPublicKeyInfo exactly as encoded in it.</summary>
    /// <exception cref="ArgumentNullException"><paramref name="certificate"/> is null.</exception>
    /// <exception cref="CryptographicException">The certificate is not well-formed DER.</exception>
    public static NodeId FromCertificate(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return FromSubjectPublicKeyInfo(CertificateDer.ReadSubjectPublicKeyInfo(certificate.RawDataMemory));
    }

    /// <summary>The ID with this 32-byte hash.</summary>
    /// <exception cref="ArgumentException"><paramref name="hash"/> is not 32 bytes long.</exception>
    public static NodeId FromHash(ReadOnlySpan<byte> hash)
    {
        if (hash.Length != HashLength)
        {
            throw new ArgumentException($"A node ID hash is {HashLength} bytes, not {hash.Length}.", nameof(hash));
        }
        return new(hash.ToArray());
    }

    /// <summary>
    /// Parses the 52-character base32 form, in either case. Returns false for anything else
    /// (null, wrong length, padding, characters outside <c>a-z2-7</c>).
    /// </summary>
    public static bool TryParse([NotNullWhen(true)] string? text, [NotNullWhen(true)] out NodeId? id)
    {
        id = null;
        if (text is null || text.Length != TextLength || !Base32.TryDecode(text, out var hash))
        {
            return false;
        }
        id = new NodeId(hash);
        return true;
    }

    /// <summary>Parses the 52-character base32 form.</summary>
    /// <exception cref="FormatException"><paramref name="text"/> is not a node ID.</exception>
    public static NodeId Parse(string text) =>
        TryParse(text, out var id)
            ? id
            : throw new FormatException($"'{text}' is not a node ID: expected {TextLength} characters of base32 (a-z, 2-7).");

    /// <summary>The lower-case base32 text, 52 characters.</summary>
    public override string ToString() => _text;

    /// <summary>True when both IDs have the same hash; compared in constant time.</summary>
    public bool Equals([NotNullWhen(true)] NodeId? other) =>
        other is not null && CryptographicOperations.FixedTimeEquals(_hash, other._hash);

    /// <inheritdoc/>
    public override bool Equals([NotNullWhen(true)] object? obj) => obj is NodeId other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => BitConverter.ToInt32(_hash, 0);

    /// <summary>Value equality.</summary>
    public static bool operator ==(NodeId? left, NodeId? right) => left is null ? right is null : left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(NodeId? left, NodeId? right) => !(left == right);
}
