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

    /// <summary>The default kernel pipe size on the zero-copy path: 256 KiB.</summary>
    /// <remarks>
    /// Measured with bench's plain CONNECT bulk stream (fresh relays alternating, 3 rounds of 3 x 1 GiB):
    /// 64 KiB pipes 11.0-14.3 Gbit/s at 0.37-0.61 CPU s/GB, 256 KiB 13.4-19.8 at 0.24-0.53, 1 MiB 15.1-19.8
    /// at 0.20-0.36. A pipe is held only while its direction flows, but the kernel counts its whole size
    /// against the user's pipe pages (fs.pipe-user-pages-soft, 64 MiB by default, not applied to root), so
    /// an unprivileged relay makes pipes this large only within a quarter of that limit (64 directions
    /// flowing at once by default) and the kernel's default size past it (see SplicePipe).
    /// </remarks>
    public const int DefaultPipeSize = 256 * 1024;

    /// <summary>Size of the pooled buffer rented while data is flowing on the copy path. Default 64 KiB.</summary>
    public int BufferSize { get; init; } = DefaultBufferSize;

    /// <summary>
    /// The size asked for the kernel pipe of a direction on the zero-copy path (rounded up to a power
    /// of two pages; the kernel may grant less). Default 256 KiB (<see cref="DefaultPipeSize"/>).
    /// </summary>
    public int PipeSize { get; init; } = DefaultPipeSize;

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
