using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay;

/// <summary>
/// Keeps what HTTP/2 tunnels may hold in the relay's memory within half of what the process may use, so that
/// clients whose destinations do not read cannot take the relay's memory.
/// </summary>
/// <remarks>
/// An HTTP/2 tunnel gets its whole receive window (<see cref="Connect.ConnectOptions.StreamWindowBytes"/>) when it
/// opens, and Kestrel keeps what arrives until the tunnel reads it; a tunnel reads only as fast as its destination
/// takes the bytes. So a client that opens tunnels to a destination that never reads (its own) can park a window
/// in the relay per tunnel: measured, 32 such tunnels on 32 connections grew the relay by 206 MiB at 4 MiB windows
/// (the rest of what they sent sat in the kernel's socket buffers, which the kernel bounds itself). A connection
/// holds at most its own window (<see cref="Connect.ConnectOptions.ConnectionWindowBytes"/>) for all its tunnels,
/// so the most the door can hold is <c>min(maxTunnels × streamWindow, connectionListeners × maxConnections ×
/// connectionWindow)</c>. When that is more than half of <see cref="GCMemoryInfo.TotalAvailableMemoryBytes"/>
/// (physical memory, or the container's or <c>DOTNET_GCHeapHardLimit</c>'s limit), the tunnels' window is lowered
/// so that it fits, to no less than 64 KiB. Kestrel's windows are fixed for a connection's life: a smaller window
/// costs a tunnel's upload rate over long round trips (window ÷ round trip), nothing else.
/// </remarks>
internal static partial class MemoryBudget
{
    /// <summary>The smallest window the budget lowers to: HTTP/2's own initial window, rounded up.</summary>
    public const int SmallestWindow = 64 * 1024;

    /// <summary>
    /// <paramref name="options"/> with the HTTP/2 tunnels' receive window lowered so that the most the tunnels may hold
    /// fits in half of <paramref name="availableBytes"/> (unchanged when it fits, or there is no CONNECT door).
    /// </summary>
    public static RelayOptions Fit(RelayOptions options, long availableBytes, ILogger logger)
    {
        if (options.Connect is not { } connect || availableBytes <= 0)
        {
            return options;
        }
        var budget = availableBytes / 2;
        if (MostHeld(options, connect.StreamWindowBytes) <= budget)
        {
            return options;
        }
        // Whole 4 KiB pages; never below HTTP/2's own initial window (nor above what was configured).
        var window = (int)Math.Min(connect.StreamWindowBytes, Math.Max(SmallestWindow, budget / connect.MaxTunnels / 4096 * 4096));
        var fitted = options with { Connect = connect with { StreamWindowBytes = window } };
        var held = MostHeld(fitted, window);
        if (held <= budget)
        {
            Lowered(logger, connect.StreamWindowBytes, window, connect.MaxTunnels, availableBytes >> 20);
        }
        else
        {
            StillAbove(logger, connect.StreamWindowBytes, window, connect.MaxTunnels, held >> 20, availableBytes >> 20);
        }
        return fitted;
    }

    /// <summary>The most the CONNECT door's HTTP/2 tunnels may hold at <paramref name="window"/> bytes each.</summary>
    private static long MostHeld(RelayOptions options, int window)
    {
        var connect = options.Connect!;
        var listeners = (connect.Endpoints.Count > 0 ? 1 : 0) + (connect.PlainEndpoints.Count > 0 ? 1 : 0);
        var byTunnels = (long)connect.MaxTunnels * window;
        var byConnections = (long)listeners * options.Limits.MaxConnections * connect.ConnectionWindowBytes;
        return Math.Min(byTunnels, byConnections);
    }

    [LoggerMessage(LogEvents.TunnelWindowLowered, LogLevel.Information,
        "HTTP/2 tunnels: a receive window of {Window} bytes instead of relay.streamWindow {Configured}, so that relay.maxTunnels {Tunnels} "
        + "of them fit in half of the {AvailableMiB} MiB this process may use (a tunnel whose destination does not read holds its window)",
        EventName = "TunnelWindowLowered")]
    private static partial void Lowered(ILogger logger, int configured, int window, int tunnels, long availableMiB);

    [LoggerMessage(LogEvents.TunnelWindowsTooLarge, LogLevel.Warning,
        "HTTP/2 tunnels: relay.maxTunnels {Tunnels} with a receive window of {Window} bytes each (relay.streamWindow {Configured}; no less than 65536 "
        + "is kept) may hold {HeldMiB} MiB, more than half of the {AvailableMiB} MiB this process may use (a tunnel whose destination does not read "
        + "holds its window). Lower relay.maxTunnels to fit",
        EventName = "TunnelWindowsTooLarge")]
    private static partial void StillAbove(ILogger logger, int configured, int window, int tunnels, long heldMiB, long availableMiB);
}
