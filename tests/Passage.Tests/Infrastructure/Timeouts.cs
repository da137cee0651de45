namespace Passage.Tests.Infrastructure;

/// <summary>Upper bounds for waits in tests: generous, so they fail a hung test rather than a slow machine.</summary>
internal static class Timeouts
{
    public static readonly TimeSpan Default = TimeSpan.FromSeconds(30);

    /// <summary>Waits until <paramref name="condition"/> holds, looking every 10 ms; throws after <see cref="Default"/>.</summary>
    public static async Task WaitUntilAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Default);
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }
}
