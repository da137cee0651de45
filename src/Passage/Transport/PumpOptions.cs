namespace Passage.Transport;

/// <summary>Tunables of one <see cref="BytePump"/> run.</summary>
public sealed record PumpOptions
{
    /// <summary>The default buffer size: 64 KiB, large enough to keep loopback and LAN streams busy.</summary>
    public const int DefaultBufferSize = 64 * 1024;

    /// <summary>
    /// Close both sides when no byte moved either way for this long. Default 5 minutes;
    /// <see cref="Timeout.InfiniteTimeSpan"/> disables it.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Size of the pooled buffer rented while data is flowing. Default 64 KiB.</summary>
    public int BufferSize { get; init; } = DefaultBufferSize;

    /// <summary>Clock for the idle timeout; tests inject their own.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Options with the defaults.</summary>
    public static PumpOptions Default { get; } = new();
}
