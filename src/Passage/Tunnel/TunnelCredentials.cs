using System.Security.Cryptography.X509Certificates;
using Passage.Identity;

namespace Passage.Tunnel;

/// <summary>This end's certificate (with its key) and how it checks the other end.</summary>
internal sealed class TunnelCredentials : IDisposable
{
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
            var certificate = X509Certificate2.CreateFromPemFile(options.CertFile, options.KeyFile);
            if (!IsMeantFor(certificate, options.Mode))
            {
                certificate.Dispose();
                var role = options.Mode == TunnelMode.Server ? "server" : "client";
                throw new InvalidDataException($"tls.cert: '{options.CertFile}' is not meant for TLS {role} authentication (its extended key usage leaves it out), which the {role} end needs");
            }
            return new TunnelCredentials(certificate, null, verifier, created: false);
        }
        catch
        {
            verifier.Dispose();
            throw;
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
