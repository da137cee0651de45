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

    /// <summary>
    /// As <see cref="WaitUntilAsync(Func{bool})"/>, but a wait that runs out throws a <see cref="TimeoutException"/> that
    /// says what <paramref name="state"/> saw last, so that a failure on a loaded machine can be read from its message.
    /// </summary>
    public static async Task WaitUntilAsync(Func<bool> condition, Func<string> state)
    {
        try
        {
            await WaitUntilAsync(condition);
        }
        catch (OperationCanceledException e)
        {
            string seen;
            try
            {
                seen = state();
            }
            catch (Exception failure)
            {
                seen = $"(the state could not be read: {failure.Message})";
            }
            throw new TimeoutException($"Still not so after {Default.TotalSeconds} s: {seen}", e);
        }
    }
}
