namespace Passage.Relay.Destinations;

/// <summary>The answer of <see cref="AddressPolicy.Check"/> for one address.</summary>
/// <param name="IsAllowed"><see langword="true"/> when the relay may connect to the address.</param>
/// <param name="Category">
/// The address's category, whether allowed or not: the reason for a refusal, and for logs the reason
/// an allowance was needed.
/// </param>
public readonly record struct AddressVerdict(bool IsAllowed, AddressCategory Category);
