namespace Passage.Tests.Tunnel;

/// <summary>One tunnel pair shared by the tests of a class (starting processes is the slow part).</summary>
public sealed class TunnelPairFixture : IAsyncLifetime
{
    internal TunnelPair Pair { get; private set; } = null!;

    /// <summary>Extra settings for both ends; overridden by derived fixtures.</summary>
    internal string Extra { get; init; } = "";

    public async Task InitializeAsync() => Pair = await TunnelPair.StartAsync(Extra);

    public async Task DisposeAsync() => await Pair.DisposeAsync();
}
