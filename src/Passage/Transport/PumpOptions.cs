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

    /// <summary>
    /// Size of the pooled buffer rented while data is flowing, and the size asked for the kernel pipe
    /// of a direction on the zero-copy path (rounded up to a power of two pages; the kernel may grant
    /// less). Default 64 KiB.
    /// </summary>
    public int BufferSize { get; init; } = DefaultBufferSize;

    /// <summary>
    /// Move bytes with splice(2) (socket → kernel pipe → socket, no copy through user space) where both
    /// ends are plain sockets (<see cref="IDuplexConnection.Socket"/>) on Linux. Default true; false
    /// forces the pooled-buffer copy. Either way the pump's results are the same; the copy is used
    /// anyway where splicing cannot be (a stream end, another OS, a kernel that refuses it).
    /// </summary>
    public bool ZeroCopy { get; init; } = true;

    /// <summary>Clock for the idle timeout; tests inject their own.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Options with the defaults.</summary>
    public static PumpOptions Default { get; } = new();
}
