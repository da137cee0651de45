using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Relay;

/// <summary>
/// Keeps the relay's caps within the open-file limit, so that connections alone can never take the last
/// descriptors: out of them, the runtime cannot load an assembly or start a thread, and the process aborts.
/// </summary>
/// <remarks>
/// Each front-door listener admits up to <see cref="RelayLimits.MaxConnections"/> client connections, a descriptor
/// each. Upstream sockets: one per pass-through connection, and for CONNECT one per tunnel, which
/// <see cref="Connect.ConnectOptions.MaxTunnels"/> bounds (an HTTP/2 connection carries many). So at most
/// <c>listeners × maxConnections</c> (+ <c>maxConnections</c> with pass-through) (+ <c>maxTunnels</c> with CONNECT)
/// descriptors go to traffic; a sixteenth of the limit is left to splice pipes
/// (<see cref="Transport.OpenFileLimit.PipeShare"/>, beyond which a direction copies instead), and
/// <see cref="Transport.OpenFileLimit.ProcessReserve"/> more to the runtime, logs and the admin listener (an idle relay
/// holds about 190; see <see cref="Transport.OpenFileLimit.ForTraffic"/>). When the limit is lower, both caps are
/// lowered to an equal share that fits, with a warning naming the keys.
/// </remarks>
internal static partial class DescriptorBudget
{
    /// <summary>
    /// <paramref name="options"/> with its caps lowered to fit <paramref name="openFiles"/> descriptors (unchanged when
    /// they fit or the limit is unknown).
    /// </summary>
    public static RelayOptions Fit(RelayOptions options, long? openFiles, ILogger logger)
    {
        if (openFiles is not { } limit)
        {
            return options;
        }
        var listeners = (options.Passthrough is null ? 0 : 1)
            + (options.Connect is { Endpoints.Count: > 0 } ? 1 : 0)
            + (options.Connect is { PlainEndpoints.Count: > 0 } ? 1 : 0);
        if (listeners == 0)
        {
            return options;
        }
        var connections = options.Limits.MaxConnections;
        var tunnels = options.Connect?.MaxTunnels ?? 0;
        var upstreamShares = (options.Passthrough is null ? 0 : 1) + (options.Connect is null ? 0 : 1);
        var available = Transport.OpenFileLimit.ForTraffic(limit);
        if ((long)(listeners + (options.Passthrough is null ? 0 : 1)) * connections + tunnels <= available)
        {
            return options;
        }
        // An equal share for every kind of slot: each listener's connections, pass-through upstreams, tunnels.
        var each = Transport.OpenFileLimit.ConnectionsThatFit(limit, listeners + upstreamShares);
        var fitted = options with
        {
            Limits = options.Limits with { MaxConnections = Math.Min(connections, each) },
            Connect = options.Connect is { } connect ? connect with { MaxTunnels = Math.Min(tunnels, each) } : null,
        };
        Lowered(logger, limit, Caps(connections, options.Connect is null ? null : tunnels), listeners, Transport.OpenFileLimit.ProcessReserve,
            Caps(fitted.Limits.MaxConnections, fitted.Connect?.MaxTunnels));
        return fitted;
    }

    /// <summary>
    /// <paramref name="connections"/> per listener, lowered when <paramref name="listeners"/> listeners of connections
    /// holding <paramref name="descriptorsEach"/> descriptors would not fit in what <paramref name="openFiles"/> leaves
    /// for traffic (unchanged when they fit or the limit is unknown). For front doors with no other cap to share.
    /// </summary>
    public static int FitConnections(int connections, int listeners, int descriptorsEach, long? openFiles)
    {
        return openFiles is { } limit && listeners > 0
            ? Math.Min(connections, Transport.OpenFileLimit.ConnectionsThatFit(limit, (long)listeners * descriptorsEach))
            : connections;
    }

    private static string Caps(int connections, int? tunnels) =>
        tunnels is { } t ? $"relay.maxConnections {connections} and relay.maxTunnels {t}" : $"relay.maxConnections {connections}";

    [LoggerMessage(LogEvents.CapsLowered, LogLevel.Warning,
        "The open-file limit ({Limit}) is below what {Configured} need (one descriptor per client connection on each of {Listeners} listeners, "
        + "one per pass-through upstream and per tunnel, a sixteenth for splice pipes, {Reserve} kept for the process); "
        + "using {Fitted}. Raise the limit (ulimit -n, LimitNOFILE=) to lift this",
        EventName = "CapsLowered")]
    private static partial void Lowered(ILogger logger, long limit, string configured, int listeners, int reserve, string fitted);
}
