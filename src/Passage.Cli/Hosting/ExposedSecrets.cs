using Microsoft.Extensions.Logging;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tunnel;

namespace Passage.Cli.Hosting;

/// <summary>
/// The files holding a role's secrets that others than their owner may read or write (<see cref="Identity.SecretFile.Exposure(string)"/>),
/// each as one line naming its setting (<see cref="SecretWarnings"/>): a warning at start, and from <c>config check</c>.
/// </summary>
internal static class ExposedSecrets
{
    /// <summary>A relay's: its identity (<c>relay.key</c>) and its token file (<c>relay.tokenFile</c>), for a CONNECT relay.</summary>
    public static IReadOnlyList<string> Of(RelayOptions relay) =>
        relay.Connect is { } connect ? Find(("relay.key", connect.KeyFile), ("relay.tokenFile", connect.TokenFile)) : [];

    /// <summary>A tunnel end's: its identity, or the private key of its certificate (<c>tls.key</c>).</summary>
    public static IReadOnlyList<string> Of(TunnelOptions tunnel) => Find(("tls.key", tunnel.KeyFile));

    /// <summary>Logs each of <paramref name="warnings"/> (from <see cref="Of(RelayOptions)"/> or <see cref="Of(TunnelOptions)"/>) at warning level.</summary>
    public static void Warn(ILogger logger, IReadOnlyList<string> warnings)
    {
        foreach (var warning in warnings)
        {
            SecretWarnings.Log(logger, warning);
        }
    }

    private static IReadOnlyList<string> Find(params (string Key, string? Path)[] files) =>
        [.. files.Where(f => f.Path is { Length: > 0 }).Select(f => SecretWarnings.Of(f.Key, f.Path!)).OfType<string>()];
}
