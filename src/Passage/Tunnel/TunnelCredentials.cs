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
            return new TunnelCredentials(certificate, null, verifier, created: false);
        }
        catch
        {
            verifier.Dispose();
            throw;
        }
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
