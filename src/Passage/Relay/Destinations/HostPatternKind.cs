namespace Passage.Relay.Destinations;

/// <summary>The host half of a destination rule pattern.</summary>
internal enum HostPatternKind
{
    /// <summary><c>*</c>: any host, name or address literal.</summary>
    Any,

    /// <summary>An exact name, compared ignoring case and a final dot.</summary>
    Exact,

    /// <summary><c>*.suffix</c>: any name with at least one label below the suffix, not the suffix itself.</summary>
    Suffix,

    /// <summary><c>~regex</c>: a regular expression over the whole name.</summary>
    Regex,

    /// <summary>An IPv4 or IPv6 address literal, compared as an address.</summary>
    Address,
}
