using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Passage.Configuration;

namespace Passage.Identity;

/// <summary>
/// A node's own identity: an ECDSA P-256 private key and the self-signed certificate that
/// carries its public key, usable as the local certificate of an <c>SslStream</c> on either
/// side of a TLS connection. Peers know the node by <see cref="NodeId"/>.
/// </summary>
/// <remarks>
/// Stored as one PEM file holding <c>PRIVATE KEY</c> (PKCS#8) and <c>CERTIFICATE</c>, mode 0600.
/// Disposing releases the certificate and its key.
/// </remarks>
public sealed class NodeIdentity : IDisposable
{
    /// <summary>How far back <c>notBefore</c> is set, so peers with slow clocks accept a fresh certificate.</summary>
    private static readonly TimeSpan ClockSkewAllowance = TimeSpan.FromDays(1);

    /// <summary>How long a created certificate is valid. The pin, not the dates, is what peers trust.</summary>
    private const int ValidityYears = 20;

    // RFC 5280 §4.2.1.12.
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private bool _disposed;

    private NodeIdentity(X509Certificate2 certificate, NodeId nodeId)
    {
        Certificate = certificate;
        NodeId = nodeId;
    }

    /// <summary>The self-signed certificate, with its private key attached.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>This node's ID: the hash of <see cref="Certificate"/>'s SubjectPublicKeyInfo.</summary>
    public NodeId NodeId { get; }

    /// <summary>
    /// Creates a new identity: a fresh P-256 key and a self-signed certificate with subject
    /// <c>CN=passage-</c> and the first 16 characters of the ID, the given names as subject
    /// alternative names, usable for TLS servers and clients, valid from a day ago for 20 years.
    /// </summary>
    /// <param name="names">DNS names and IP addresses for the certificate; IP literals become IP entries.</param>
    /// <exception cref="ArgumentException">A name is neither a DNS name nor an IP address.</exception>
    public static NodeIdentity Create(IEnumerable<string>? names = null)
    {
        var alternativeNames = BuildAlternativeNames(names);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var nodeId = NodeId.FromPublicKey(key);
        var request = new CertificateRequest(
            new X500DistinguishedName($"CN=passage-{nodeId.ToString()[..16]}"), key, HashAlgorithmName.SHA256);
        // RFC 5280 §4.2.1.9: an end entity, not a CA.
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        // RFC 5280 §4.2.1.3: ECDSA keys in TLS 1.3 only sign (the handshake's CertificateVerify).
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            new OidCollection { new Oid(ServerAuth), new Oid(ClientAuth) }, critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        if (alternativeNames is not null)
        {
            // RFC 5280 §4.2.1.6: present only with at least one name.
            request.CertificateExtensions.Add(alternativeNames);
        }

        var now = DateTimeOffset.UtcNow;
        using var unsigned = request.Create(
            request.SubjectName,
            X509SignatureGenerator.CreateForECDsa(key),
            now - ClockSkewAllowance,
            now.AddYears(ValidityYears),
            NewSerialNumber());
        return new NodeIdentity(Attach(unsigned, key), nodeId);
    }

    /// <summary>Reads an identity written by <see cref="Save"/> (or any PEM file with a P-256 key and its certificate).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">
    /// The file has no private key, no certificate, a key that is not ECDSA P-256, a key
    /// that does not belong to the certificate, or a certificate that is not self-signed; the message says which.
    /// </exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static NodeIdentity Load(string path)
    {
        using var pem = IdentityPem.Read(path);
        if (pem.PrivateKey is null)
        {
            throw new InvalidDataException($"'{path}' has no private key ('-----BEGIN PRIVATE KEY-----'); an identity file holds a key and its certificate.");
        }
        if (pem.Certificate is null)
        {
            throw new InvalidDataException($"'{path}' has no certificate ('-----BEGIN CERTIFICATE-----'); an identity file holds a key and its certificate.");
        }
        RequireMatch(pem, pem.Certificate, pem.PrivateKey);
        RequireSelfSigned(pem, pem.Certificate);
        return new NodeIdentity(Attach(pem.Certificate, pem.PrivateKey), NodeId.FromCertificate(pem.Certificate));
    }

    /// <summary>
    /// Loads the identity at <paramref name="path"/>, or creates and saves a new one there if
    /// there is no file, as a relay does on its first start.
    /// </summary>
    /// <param name="path">The identity file.</param>
    /// <param name="names">Names for a new certificate; ignored when the file exists.</param>
    /// <param name="created">True when a new identity was created and saved.</param>
    /// <exception cref="InvalidDataException">The file exists but is not a usable identity.</exception>
    /// <exception cref="IOException">The file could not be read or written.</exception>
    public static NodeIdentity LoadOrCreate(string path, IEnumerable<string>? names, out bool created)
    {
        // Anything already there is read, so that a directory or a FIFO is refused as what it is.
        if (!InputFile.Stat(path).Exists)
        {
            var identity = Create(names);
            try
            {
                identity.Save(path, overwrite: false);
                created = true;
                return identity;
            }
            catch (IOException) when (File.Exists(path))
            {
                // Another process created it first; use theirs.
                identity.Dispose();
            }
            catch
            {
                identity.Dispose();
                throw;
            }
        }
        created = false;
        return Load(path);
    }

    /// <summary>
    /// Why the identity file at <paramref name="path"/> cannot be loaded, in the words <see cref="Load"/> would use (or that
    /// it is a symbolic link to nothing, or that a file stands where a directory on its way should be, as
    /// <see cref="LoadOrCreate"/> would say), or null when it can, when nothing is there (<see cref="LoadOrCreate"/> creates
    /// it), or when something other than a regular
    /// file is (<see cref="InputFile.Refusal"/> says what). Settings check their key with it, so that one <c>config
    /// check</c> accepts does not fail the start.
    /// </summary>
    public static string? Problem(string path)
    {
        var kind = InputFile.Stat(path).Kind;
        if (kind == FileKind.Missing)
        {
            // A symbolic link to nothing (a secret not mounted): the start would not make a key through it, as the link is
            // there, and would then find nothing to read. A file where a directory on the way should be: the start could
            // not make the key there, and says so in these words.
            return DanglingLinkTarget(path) is { } target ? $"'{path}' is a symbolic link to '{target}', which does not exist"
                : Path.GetDirectoryName(Path.GetFullPath(path)) is { } directory ? SecretFile.FileInTheWay(directory)
                : null;
        }
        if (kind is not (FileKind.Regular or FileKind.Unknown))
        {
            return null;
        }
        try
        {
            using var identity = Load(path);
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CryptographicException)
        {
            return e.Message;
        }
    }

    /// <summary>
    /// What keeps the file at <paramref name="path"/> from serving as an identity, loaded or created at start: something
    /// other than a regular file there (<see cref="InputFile.Refusal"/>), else <see cref="Problem"/>; null when nothing does.
    /// </summary>
    public static string? FileProblem(string path) => InputFile.Refusal(path, InputFile.Stat(path)) ?? Problem(path);

    /// <summary>Where the symbolic link <paramref name="path"/> leads, or null when it is no link (or cannot be read).</summary>
    private static string? DanglingLinkTarget(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// The node ID in a PEM file holding a certificate, a private key, a public key
    /// (<c>BEGIN PUBLIC KEY</c>), or several of them. A key alone gives the same ID as its
    /// certificate; when the file has more than one, they must belong together.
    /// </summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The file has no usable key or certificate, or its parts do not match.</exception>
    /// <exception cref="IOException">The file could not be read.</exception>
    /// <exception cref="UnauthorizedAccessException">The file may not be read.</exception>
    public static NodeId ReadNodeId(string path)
    {
        using var pem = IdentityPem.Read(path);
        using var publicKey = pem.PublicKey is null ? null : ImportPublicKey(pem.PublicKey);
        if (pem.Certificate is not null)
        {
            if (pem.PrivateKey is not null)
            {
                RequireMatch(pem, pem.Certificate, pem.PrivateKey);
            }
            if (publicKey is not null)
            {
                RequireMatch(pem, pem.Certificate, publicKey);
            }
            RequireSelfSigned(pem, pem.Certificate);
            return NodeId.FromCertificate(pem.Certificate);
        }
        if (pem.PrivateKey is not null)
        {
            if (publicKey is not null && !IdentityPem.SameKey(pem.PrivateKey, publicKey))
            {
                throw new InvalidDataException($"The private key and the public key in '{path}' do not match.");
            }
            return NodeId.FromPublicKey(pem.PrivateKey);
        }
        if (pem.PublicKey is not null)
        {
            return NodeId.FromSubjectPublicKeyInfo(pem.PublicKey);
        }
        throw new InvalidDataException($"'{path}' has no certificate, private key or public key.");
    }

    /// <summary>
    /// Writes the identity to <paramref name="path"/> as PEM (<c>PRIVATE KEY</c>, then
    /// <c>CERTIFICATE</c>), creating it with mode 0600. An existing file is replaced atomically
    /// when <paramref name="overwrite"/> is true and refused otherwise.
    /// </summary>
    /// <exception cref="IOException">The file exists and <paramref name="overwrite"/> is false, or writing failed.</exception>
    /// <exception cref="ObjectDisposedException">The identity has been disposed.</exception>
    public void Save(string path, bool overwrite)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var key = Certificate.GetECDsaPrivateKey()
            ?? throw new InvalidOperationException("The certificate has no ECDSA private key.");
        var keyDer = key.ExportPkcs8PrivateKey();
        var keyPem = PemEncoding.Write("PRIVATE KEY", keyDer);
        var certificatePem = PemEncoding.Write("CERTIFICATE", Certificate.RawData);
        var text = new char[keyPem.Length + 1 + certificatePem.Length + 1];
        keyPem.CopyTo(text, 0);
        text[keyPem.Length] = '\n';
        certificatePem.CopyTo(text, keyPem.Length + 1);
        text[^1] = '\n';
        var bytes = Encoding.ASCII.GetBytes(text);
        try
        {
            SecretFile.Write(path, bytes, overwrite);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(keyDer);
            CryptographicOperations.ZeroMemory(bytes);
            Array.Clear(keyPem);
            Array.Clear(text);
        }
    }

    /// <summary>Releases the certificate and its private key. Safe to call more than once.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Certificate.Dispose();
        }
    }

    /// <summary>A certificate with <paramref name="key"/> attached, in a form SslStream can use.</summary>
    /// <remarks>
    /// On Linux, SslStream hands OpenSSL the key that CopyWithPrivateKey attached, on both the
    /// server and the client side, so no PKCS#12 round trip is needed; PinnedTlsTests holds this
    /// in place. Windows SChannel would refuse such an ephemeral key and need that round trip.
    /// </remarks>
    private static X509Certificate2 Attach(X509Certificate2 certificate, ECDsa key) =>
        certificate.CopyWithPrivateKey(key);

    private static void RequireMatch(IdentityPem pem, X509Certificate2 certificate, ECDsa key)
    {
        using var certificateKey = certificate.GetECDsaPublicKey()
            ?? throw new InvalidDataException($"The certificate in '{pem.Path}' has no ECDSA key.");
        if (!IdentityPem.SameKey(certificateKey, key))
        {
            throw new InvalidDataException($"The key and the certificate in '{pem.Path}' do not match: the certificate is for a different key.");
        }
    }

    /// <summary>
    /// A node is its key in a certificate it signed itself: peers that pin its ID accept no other
    /// (<see cref="CertificatePin.MatchesPin"/>), so one issued by someone else is refused here, where its file is named,
    /// rather than by every peer, which could only say that the node did not present its key.
    /// </summary>
    private static void RequireSelfSigned(IdentityPem pem, X509Certificate2 certificate)
    {
        if (!CertificateDer.IsSelfSigned(certificate))
        {
            throw new InvalidDataException(
                $"The certificate in '{pem.Path}' is not self-signed: peers pinning a node's ID accept only its key in a certificate "
                + "signed by that key itself, as 'passage keygen' writes.");
        }
    }

    private static ECDsa ImportPublicKey(byte[] subjectPublicKeyInfo)
    {
        var key = ECDsa.Create();
        key.ImportSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        return key;
    }

    private static X509Extension? BuildAlternativeNames(IEnumerable<string>? names)
    {
        if (names is null)
        {
            return null;
        }
        var builder = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var name in names)
        {
            if (HostName.TryParseIpLiteral(name, out var address))
            {
                builder.AddIpAddress(address);
            }
            else if (CertificateNameProblem(name) is { } problem)
            {
                throw new ArgumentException(problem + ".");
            }
            else
            {
                builder.AddDnsName(name);
            }
            any = true;
        }
        return any ? builder.Build(critical: false) : null;
    }

    /// <summary>
    /// Why a new certificate cannot name <paramref name="name"/> (<c>'a b' is neither a DNS name nor an IP address</c>),
    /// or null when it can: an IP literal, a DNS name, or a wildcard <c>*.name</c>. Settings check their names with it
    /// before anything starts, as <see cref="Create"/> refuses the same.
    /// </summary>
    internal static string? CertificateNameProblem(string name) =>
        HostName.TryParseIpLiteral(name, out _) || HostName.IsDnsName(name) || (name.StartsWith("*.", StringComparison.Ordinal) && HostName.IsDnsName(name[2..]))
            ? null
            : $"'{name}' is neither a DNS name nor an IP address";

    /// <summary>RFC 5280 §4.1.2.2: a positive integer of at most 20 octets; 16 random ones here.</summary>
    private static byte[] NewSerialNumber()
    {
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        serial[0] |= 0x01;
        return serial;
    }
}
