namespace Passage.Relay.Destinations;

/// <summary>How resolving a destination host ended.</summary>
public enum ResolveStatus
{
    /// <summary>
    /// Every address is allowed by the policy; <see cref="ResolveResult.Addresses"/> holds them, and
    /// the relay connects to these and no others.
    /// </summary>
    Ok,

    /// <summary>
    /// The host is neither a valid DNS name nor a valid address literal (bad characters, empty or
    /// over-long labels, a numeric-looking name that is not an IPv4 literal, a port or a bad zone).
    /// Nothing was looked up.
    /// </summary>
    InvalidName,

    /// <summary>
    /// The lookup failed: no such name, no answer in time from the system resolver, or a resolver
    /// error. <see cref="ResolveResult.DnsErrorCode"/> says which (RFC 9209 <c>dns_error</c>).
    /// </summary>
    DnsError,

    /// <summary>The name exists but has no addresses, or the static map maps it to none.</summary>
    NoAddresses,

    /// <summary>
    /// At least one address is refused by the policy, so all are: a name that resolves to both
    /// allowed and refused addresses is treated as a rebinding attempt.
    /// <see cref="ResolveResult.RefusedAddress"/> and <see cref="ResolveResult.RefusedCategory"/> name
    /// the first refused one (RFC 9209 <c>destination_ip_prohibited</c>).
    /// </summary>
    Prohibited,
}
