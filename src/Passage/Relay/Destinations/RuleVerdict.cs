namespace Passage.Relay.Destinations;

/// <summary>The answer of <see cref="DestinationRules.Check"/> for one host and port.</summary>
/// <param name="Status">Whether the destination is allowed, and if not why.</param>
/// <param name="Pattern">
/// The pattern that decided, as configured: the deny rule for <see cref="RuleStatus.Denied"/>, the first
/// matching allow rule for <see cref="RuleStatus.Allowed"/>; <see langword="null"/> otherwise.
/// </param>
public readonly record struct RuleVerdict(RuleStatus Status, string? Pattern)
{
    /// <summary>Whether the relay may go on to resolve and check the destination's addresses.</summary>
    public bool IsAllowed => Status == RuleStatus.Allowed;
}
