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

    /// <summary>The default kernel pipe size on the zero-copy path: 1 MiB.</summary>
    /// <remarks>
    /// Measured across processes on 2 cores (bench/RESULTS.md, "Pipe size"): plain CONNECT relays side by side,
    /// alternating rounds of iperf3 and the load tool. Against 256 KiB, 512 KiB pipes cost the relay 8-26% less
    /// CPU per GB (one stream: 0.277 against 0.343 s/GB with iperf3, 0.284 against 0.382 with the load tool) and
    /// moved as much or more; measured twice with the relays' places swapped, 1 MiB saved another 15-18% against
    /// 512 KiB in four measures of five (not iperf3's 8 streams) and moved the same. The kernel's pipe-max-size allows an unprivileged process 1 MiB by default.
    /// A pipe is held only while its direction flows, but its whole size counts against the budget for large
    /// pipes (a quarter of fs.pipe-user-pages-soft, 16 MiB by default), so pipes come smaller as that fills: see
    /// SplicePipe.LargeSize.
    /// </remarks>
    public const int DefaultPipeSize = 1024 * 1024;

    /// <summary>Size of the pooled buffer rented while data is flowing on the copy path. Default 64 KiB.</summary>
    public int BufferSize { get; init; } = DefaultBufferSize;

    /// <summary>
    /// The size asked for the kernel pipe of a direction on the zero-copy path (rounded up to a power
    /// of two pages; the kernel may grant less, and smaller pipes are asked for as the process's budget for
    /// large pipes fills). Default 1 MiB (<see cref="DefaultPipeSize"/>).
    /// </summary>
    public int PipeSize { get; init; } = DefaultPipeSize;

    /// <summary>
    /// Move bytes with splice(2) (socket → kernel pipe → socket, no copy through user space) where both
    /// ends are plain sockets (<see cref="IDuplexConnection.Socket"/>) on Linux. Default true; false
    /// forces the pooled-buffer copy. Either way the pump's results are the same; the copy is used
    /// anyway where splicing cannot be (a stream end, another OS, a kernel that refuses it).
    /// </summary>
    public bool ZeroCopy { get; init; } = true;

    /// <summary>Where each run also adds the bytes it delivers, as it delivers them (a relay's byte counters); null for none.</summary>
    public ByteTally? Tally { get; init; }

    /// <summary>Clock for the idle timeout; tests inject their own.</summary>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Options with the defaults.</summary>
    public static PumpOptions Default { get; } = new();
}
