using Microsoft.Extensions.Logging;
using Passage.Configuration;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tunnel;

namespace Passage.Cli.Hosting;

/// <summary>
/// The files holding a role's secrets that others than their owner may read or write (<see cref="SecretFile.Exposure(string)"/>),
/// and a client's secrets given on its command line, each as one line naming its setting (<see cref="SecretWarnings"/>): a
/// warning at start, and from <c>config check</c>.
/// </summary>
internal static class ExposedSecrets
{
    /// <summary>A relay's: its identity (<c>relay.key</c>) and its token file (<c>relay.tokenFile</c>), for a CONNECT relay.</summary>
    public static IReadOnlyList<string> Of(RelayOptions relay) =>
        relay.Connect is { } connect ? Find(("relay.key", connect.KeyFile), ("relay.tokenFile", connect.TokenFile)) : [];

    /// <summary>A tunnel end's: its identity, or the private key of its certificate (<c>tls.key</c>).</summary>
    public static IReadOnlyList<string> Of(TunnelOptions tunnel) => Find(("tls.key", tunnel.KeyFile));

    /// <summary>
    /// A client's: its identity file (<c>client.key</c>), and its token and its local users' passwords (<c>client.token</c>,
    /// <c>client.socksUsers</c>, <c>client.httpUsers</c>) where a settings file others may read holds them, or where they were
    /// given as flags: a command line is there for every user of the machine to read (<c>ps</c>, <c>/proc/PID/cmdline</c>),
    /// where the process's environment is its user's alone.
    /// </summary>
    public static IReadOnlyList<string> Of(SettingsReader client)
    {
        var warnings = new List<string>(Find(("client.key", client.GetString("client:key"))));
        foreach (var (key, entry) in (ReadOnlySpan<(string, string)>)[("client:token", ""), ("client:socksUsers", "__USER"), ("client:httpUsers", "__USER")])
        {
            var name = key.Replace(':', '.');
            foreach (var layer in client.LayersSetting(key))
            {
                if (layer.Source == SettingsLayer.Flags)
                {
                    warnings.Add($"{name}: given on the command line, which every user of this machine can read (ps); set {SettingsReader.VariableOf(key)}{entry} or put it in a settings file only its owner may read");
                }
                else if (layer.Source != SettingsLayer.Environment && SecretFile.Exposure(layer.Source) is { } exposure)
                {
                    warnings.Add(SecretWarnings.Format(name, $"in a settings file others may read: {exposure}"));
                }
            }
        }
        return warnings;
    }

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
