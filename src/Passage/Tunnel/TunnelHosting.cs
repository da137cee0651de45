using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Passage.Tunnel;

/// <summary>What the two ends do alike with the Kestrel host they listen with: start it, learn the bound port, drain on stop.</summary>
internal static class TunnelHosting
{
    /// <summary>
    /// Starts <paramref name="app"/>, which listens on <paramref name="endpoint"/> (the setting <paramref name="key"/>). A
    /// listen the system refuses names the address and its setting: its own words alone ("Cannot assign requested
    /// address" for an address not on this machine) leave the operator to guess which. (Kestrel names it itself only when
    /// it is in use.)
    /// </summary>
    public static async Task StartAsync(WebApplication app, string key, IPEndPoint endpoint)
    {
        try
        {
            await app.StartAsync().ConfigureAwait(false);
        }
        catch (SocketException e)
        {
            throw new IOException($"cannot listen on {endpoint} ({key}): {e.Message}", e);
        }
    }

    /// <summary>Where <paramref name="app"/> listens: <paramref name="asked"/> with the port the OS chose when 0 was asked for.</summary>
    public static IPEndPoint BoundEndpoint(WebApplication app, IPEndPoint asked)
    {
        var first = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault();
        return first is not null && Uri.TryCreate(first, UriKind.Absolute, out var uri) ? new IPEndPoint(asked.Address, uri.Port) : asked;
    }

    /// <summary>
    /// Stops taking requests and lets those in flight finish for <paramref name="drainTimeout"/>, or until
    /// <paramref name="hurry"/> is cancelled.
    /// </summary>
    public static async Task StopAsync(WebApplication app, ILogger logger, TimeSpan drainTimeout, CancellationToken hurry)
    {
        TunnelLog.Stopping(logger, Configuration.Duration.Format(drainTimeout));
        using var drain = CancellationTokenSource.CreateLinkedTokenSource(hurry);
        drain.CancelAfter(drainTimeout);
        await app.StopAsync(drain.Token).ConfigureAwait(false);
        TunnelLog.Stopped(logger);
    }
}
