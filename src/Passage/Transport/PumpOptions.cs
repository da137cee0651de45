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

    /// <summary>The default kernel pipe size on the zero-copy path: 512 KiB.</summary>
    /// <remarks>
    /// Measured across processes on 2 cores (bench/RESULTS.md, "Pipe size"): plain CONNECT relays side by side,
    /// alternating rounds of iperf3 and the load tool. Against 256 KiB, 512 KiB pipes cost the relay 8-26% less
    /// CPU per GB (one stream: 0.277 against 0.343 s/GB with iperf3, 0.284 against 0.382 with the load tool) and
    /// moved as much or more; 1 MiB saved 6-14% more again and moved the same. A pipe is held only
    /// while its direction flows, but the kernel counts its whole size against the user's pipe pages
    /// (fs.pipe-user-pages-soft, 64 MiB by default, not applied to root), so an unprivileged relay makes pipes
    /// this large only within a quarter of that limit (32 directions flowing at once by default; 16 at 1 MiB)
    /// and the kernel's default size past it (see SplicePipe).
    /// </remarks>
    public const int DefaultPipeSize = 512 * 1024;

    /// <summary>Size of the pooled buffer rented while data is flowing on the copy path. Default 64 KiB.</summary>
    public int BufferSize { get; init; } = DefaultBufferSize;

    /// <summary>
    /// The size asked for the kernel pipe of a direction on the zero-copy path (rounded up to a power
    /// of two pages; the kernel may grant less). Default 512 KiB (<see cref="DefaultPipeSize"/>).
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
