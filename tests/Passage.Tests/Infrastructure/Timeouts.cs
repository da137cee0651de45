namespace Passage.Tests.Infrastructure;

/// <summary>Upper bounds for waits in tests: generous, so they fail a hung test rather than a slow machine.</summary>
internal static class Timeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);
}
