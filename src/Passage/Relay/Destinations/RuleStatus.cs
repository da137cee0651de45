namespace Passage.Relay.Destinations;

/// <summary>How <see cref="DestinationRules.Check"/> decided on a host and port.</summary>
public enum RuleStatus
{
    /// <summary>An allow rule (or the default, <c>*:443</c>) matches and no deny rule does.</summary>
    Allowed,

    /// <summary>A deny rule matches; <see cref="RuleVerdict.Pattern"/> names it. Deny wins over allow.</summary>
    Denied,

    /// <summary>No allow rule matches (a port outside 1 to 65535 never matches).</summary>
    NotAllowed,

    /// <summary>
    /// The host is neither a valid name nor a valid address literal, by the same rules as
    /// <see cref="DestinationResolver"/>. Nothing was matched and nothing may be looked up.
    /// </summary>
    InvalidHost,
}
