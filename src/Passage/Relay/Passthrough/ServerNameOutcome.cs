namespace Passage.Relay.Passthrough;

/// <summary>What <see cref="ServerNameExtension.Read"/> found in a server_name extension.</summary>
internal enum ServerNameOutcome
{
    /// <summary>A valid DNS host name; the name is returned.</summary>
    HostName,

    /// <summary>A well-formed list with no host_name entry (only name types this code does not know).</summary>
    NoHostName,

    /// <summary>The host_name is an IPv4 or IPv6 literal, which RFC 6066 §3 forbids; treated as no SNI.</summary>
    IpLiteral,

    /// <summary>The lengths are consistent but the host_name is not a DNS host name.</summary>
    BadHostName,

    /// <summary>The lengths are inconsistent, the list is empty, or a name type repeats.</summary>
    Malformed,
}
