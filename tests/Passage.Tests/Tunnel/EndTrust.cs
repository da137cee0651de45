using Passage.Identity;

namespace Passage.Tests.Tunnel;

/// <summary>How one end proves itself and knows the other: its members of the <c>general</c> and <c>tls</c> sections.</summary>
internal sealed record EndTrust(string General, string Tls)
{
    /// <summary>An identity file, and the other end pinned by node ID.</summary>
    public static EndTrust Pinned(NodeId peer, string identityFile) =>
        new($"\"peer\": \"{peer}\"", $"\"key\": \"{identityFile}\"");

    /// <summary>CA mode: a certificate and its key, and the CA and name the other end's certificate must have.</summary>
    public static EndTrust Ca(string peerHostname, string certificateFile, string keyFile, string caFile) =>
        new($"\"peerHostname\": \"{peerHostname}\"", $"\"key\": \"{keyFile}\", \"cert\": \"{certificateFile}\", \"ca\": \"{caFile}\"");
}
