namespace Passage.Relay.Destinations;

/// <summary>What a destination host string turned out to be.</summary>
internal enum HostKind
{
    /// <summary>Neither a valid name nor a valid address literal; never looked up.</summary>
    Invalid,

    /// <summary>A syntactically valid DNS name, to be looked up.</summary>
    Name,

    /// <summary>An IPv4 or IPv6 address literal, used as is without any lookup.</summary>
    Address,
}
