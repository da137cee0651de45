using Passage.Identity;
using System.Globalization;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Passage.Relay.Auth;

/// <summary>
/// Which clients may connect over mutual TLS, by node ID (<c>--client-id ID</c>, repeatable): the
/// SHA-256 of the client certificate's SubjectPublicKeyInfo, as in <c>ID@host:port</c>. The pin is the
/// key, not the certificate, so a client may renew its self-signed certificate with the same key.
/// Immutable and safe to share.
/// </summary>
/// <remarks>
/// With no IDs, mutual TLS is not required (<see cref="RequiresClientCertificate"/> is false) and every
/// client is allowed, with or without a certificate. With IDs, the TLS layer asks for a client
/// certificate and accepts any (chain validation says nothing about a self-signed key);
/// <see cref="Allows"/> then decides on the key alone.
/// </remarks>
public sealed class ClientIdPolicy
{
    private readonly byte[] _ids;

    private ClientIdPolicy(byte[] ids) => _ids = ids;

    /// <summary>No IDs: mutual TLS is not required.</summary>
    public static ClientIdPolicy None { get; } = new([]);

    /// <summary>The number of allowed IDs.</summary>
    public int Count => _ids.Length / NodeId.HashLength;

    /// <summary>Whether clients must present a certificate whose key has an allowed ID.</summary>
    public bool RequiresClientCertificate => _ids.Length > 0;

    /// <summary>Whether the client that presented <paramref name="clientCertificate"/> may connect.</summary>
    /// <param name="clientCertificate">The certificate the client presented in the TLS handshake, or
    /// <see langword="null"/> when it presented none.</param>
    /// <returns>
    /// True when no IDs are configured; otherwise whether the certificate's key hashes to one of them,
    /// compared in constant time against every ID.
    /// </returns>
    public bool Allows(X509Certificate2? clientCertificate)
    {
        if (_ids.Length == 0)
        {
            return true;
        }

        if (clientCertificate is null)
        {
            return false;
        }

        NodeId presented;
        try
        {
            presented = NodeId.FromCertificate(clientCertificate);
        }
        catch (CryptographicException)
        {
            return false;
        }

        int matched = 0;
        for (int offset = 0; offset < _ids.Length; offset += NodeId.HashLength)
        {
            matched |= CryptographicOperations.FixedTimeEquals(presented.Hash, _ids.AsSpan(offset, NodeId.HashLength)) ? 1 : 0;
        }

        return matched != 0;
    }

    /// <summary>
    /// Parses configured node IDs, adding one message per bad entry to <paramref name="errors"/> so that
    /// a validator can report every error at once.
    /// </summary>
    /// <param name="ids">The configured IDs: 52 lower-case base32 characters each.</param>
    /// <param name="key">The configuration key named in messages, e.g. <c>relay.clientIds</c>.</param>
    /// <param name="errors">Receives messages such as
    /// <c>relay.clientIds[1]: 'abc' is not a node ID (52 lower-case base32 characters)</c>.</param>
    /// <returns>The policy from the IDs that parsed; complete only when no error was added.</returns>
    public static ClientIdPolicy Parse(IReadOnlyList<string> ids, string key, ICollection<string> errors)
    {
        ArgumentNullException.ThrowIfNull(ids);
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(errors);

        var bytes = new List<byte>(ids.Count * NodeId.HashLength);
        for (int i = 0; i < ids.Count; i++)
        {
            string text = ids[i] ?? "";
            if (NodeId.TryParse(text, out var id))
            {
                bytes.AddRange(id.Hash);
                continue;
            }

            string hint = text.Contains('@', StringComparison.Ordinal) ? "; give the ID alone, without @host:port" : "";
            errors.Add(string.Create(
                CultureInfo.InvariantCulture,
                $"{key}[{i}]: '{text}' is not a node ID ({NodeId.TextLength} base32 characters, as `passage id` prints){hint}"));
        }

        return bytes.Count == 0 ? None : new ClientIdPolicy([.. bytes]);
    }
}
