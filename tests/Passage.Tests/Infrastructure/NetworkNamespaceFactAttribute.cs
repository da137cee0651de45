namespace Passage.Tests.Infrastructure;

/// <summary>
/// A fact that needs a <see cref="NetworkNamespace"/>; skipped, with the reason, only where none can be made, so that a
/// run where the check did not happen says so rather than passing.
/// </summary>
internal sealed class NetworkNamespaceFactAttribute : FactAttribute
{
    public NetworkNamespaceFactAttribute()
    {
        if (NetworkNamespace.WhyUnavailable is { } why)
        {
            Skip = why;
        }
    }
}
