using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Passage.Configuration;
using Passage.Identity;

namespace Passage.Tunnel;

/// <summary>This end's certificate (with its key) and how it checks the other end.</summary>
internal sealed class TunnelCredentials : IDisposable
{
    /// <summary>A certificate (with any chain) or a key in PEM is a few kilobytes; anything this large is not one.</summary>
    private const int MaxPemBytes = 1024 * 1024;

    private readonly NodeIdentity? _identity;

    private TunnelCredentials(X509Certificate2 certificate, NodeIdentity? identity, PeerVerifier verifier, bool created)
    {
        Certificate = certificate;
        _identity = identity;
        Verifier = verifier;
        Created = created;
        NodeId = NodeId.FromCertificate(certificate);
    }

    /// <summary>The certificate this end presents, its private key attached.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>This end's node ID (what the other end puts in <c>general.peer</c>).</summary>
    public NodeId NodeId { get; }

    /// <summary>True when the identity file did not exist and was created now.</summary>
    public bool Created { get; }

    /// <summary>Checks the other end's certificate.</summary>
    public PeerVerifier Verifier { get; }

    /// <summary>Loads (or, for an identity file, creates) this end's certificate and the peer check.</summary>
    /// <exception cref="InvalidDataException">The key or certificate file is unusable; the message says why.</exception>
    /// <exception cref="IOException">A file cannot be read or written.</exception>
    /// <exception cref="System.Security.Cryptography.CryptographicException">A PEM file is malformed.</exception>
    public static TunnelCredentials Load(TunnelOptions options)
    {
        var verifier = PeerVerifier.Create(options);
        try
        {
            if (options.CertFile is null)
            {
                var identity = NodeIdentity.LoadOrCreate(options.KeyFile, null, out var created);
                return new TunnelCredentials(identity.Certificate, identity, verifier, created);
            }
            return new TunnelCredentials(LoadPair(options.CertFile, options.KeyFile, options.Mode), null, verifier, created: false);
        }
        catch
        {
            verifier.Dispose();
            throw;
        }
    }

    /// <summary>
    /// What keeps <c>tls.cert</c> and <c>tls.key</c> from serving as this end's certificate (the message names the key),
    /// or null when they load as one: so that <c>--check</c> says it, not the start.
    /// </summary>
    public static string? PairProblem(string certFile, string keyFile, TunnelMode mode)
    {
        try
        {
            LoadPair(certFile, keyFile, mode).Dispose();
            return null;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
    }

    /// <summary>The certificate at <paramref name="certFile"/> with the private key at <paramref name="keyFile"/>, fit for <paramref name="mode"/>.</summary>
    /// <exception cref="InvalidDataException">They are not a certificate and its key, or not one for the role; the message names the key.</exception>
    private static X509Certificate2 LoadPair(string certFile, string keyFile, TunnelMode mode)
    {
        var certificatePem = ReadPem(certFile, "tls.cert", MaxPemBytes);
        var keyPem = ReadPem(keyFile, "tls.key", MaxPemBytes);
        X509Certificate2 certificate;
        try
        {
            certificate = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        }
        catch (Exception e) when (e is CryptographicException or ArgumentException)
        {
            // "The certificate contents do not contain a PEM with a CERTIFICATE label", a key of another kind, or one that
            // does not match ("The provided key does not match the public key for this certificate", an
            // ArgumentException, which the start did not catch: a stack trace): the runtime's words, with the keys named.
            throw new InvalidDataException($"tls.cert and tls.key ('{certFile}', '{keyFile}'): not a certificate and its private key: {e.Message}", e);
        }
        finally
        {
            // The private key was in this buffer.
            Array.Clear(keyPem);
        }
        if (!IsMeantFor(certificate, mode))
        {
            certificate.Dispose();
            var role = mode == TunnelMode.Server ? "server" : "client";
            throw new InvalidDataException($"tls.cert: '{certFile}' is not meant for TLS {role} authentication (its extended key usage leaves it out), which the {role} end needs");
        }
        return certificate;
    }

    /// <summary>
    /// The text of the PEM file <paramref name="path"/> (set at <paramref name="key"/>, which messages name): a regular
    /// file of at most <paramref name="maxBytes"/> bytes. A FIFO or a device is refused before it is opened, so a start
    /// never waits on one.
    /// </summary>
    /// <exception cref="InvalidDataException">It is not a regular file, or is too large; the message names the key.</exception>
    /// <exception cref="IOException">It cannot be read (missing, for one).</exception>
    internal static char[] ReadPem(string path, string key, int maxBytes)
    {
        byte[] bytes;
        try
        {
            bytes = InputFile.ReadAll(path, maxBytes);
        }
        catch (InputFileException e)
        {
            throw new InvalidDataException($"{key}: {e.Message}", e);
        }
        try
        {
            return Encoding.UTF8.GetChars(bytes);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(bytes);
        }
    }

    /// <summary>
    /// True when <paramref name="certificate"/> may play <paramref name="role"/>: its extended key usage lists that
    /// role's usage, or it has none (good for any). The other end checks the same (<see cref="PeerVerifier"/>).
    /// </summary>
    private static bool IsMeantFor(X509Certificate2 certificate, TunnelMode role)
    {
        var needed = PeerVerifier.UsageFor(role);
        return certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is not { } usages
            || usages.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(usage => usage.Value == needed);
    }

    public void Dispose()
    {
        if (_identity is not null)
        {
            _identity.Dispose();
        }
        else
        {
            Certificate.Dispose();
        }
        Verifier.Dispose();
    }
}
