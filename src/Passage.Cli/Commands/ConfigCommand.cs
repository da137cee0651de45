using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Cli.Hosting;
using Passage.Client;
using Passage.Configuration;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tunnel;

namespace Passage.Cli.Commands;

/// <summary>
/// <c>passage config check FILE</c>: prints the effective relay, tunnel or client configuration (told apart by their
/// sections), or every error in the file.
/// </summary>
internal static class ConfigCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The JSON settings file to check" };
        var check = new Command("check", "Check a settings file (relay, tunnel or client, told apart by its sections) with PASSAGE__ environment variables applied: print the effective configuration with defaults filled in, or every error, each naming its key. Exit 0 when valid, 1 otherwise.")
        {
            file,
        };
        check.SetAction(async parse =>
        {
            var path = parse.GetValue(file)!;
            var role = RoleOf(path);
            IReadOnlyList<string> errors;
            string? effective = null;
            IReadOnlyList<string> fitted = [];
            IReadOnlyList<string> exposed = [];
            switch (role)
            {
                case "tunnel":
                    var (tunnel, tunnelLog, tunnelErrors) = TunnelCommand.Load(path, []);
                    errors = tunnelErrors;
                    exposed = ExposedSecrets.Of(tunnel);
                    effective = TunnelSettings.ToJson(tunnel, tunnelLog);
                    break;
                case "client":
                    var (layers, fileErrors) = CliSettings.Build(path, []);
                    var reader = new SettingsReader(layers);
                    var (client, proxy, keyFile) = ClientSettings.Read(reader);
                    var clientLog = LogOptions.Read(reader, LoggingSetup.JournalAttached);
                    errors = CliSettings.Errors(fileErrors, [], reader);
                    exposed = ExposedSecrets.Of(reader);
                    effective = ClientSettings.ToJson(client, proxy, keyFile, clientLog);
                    break;
                default:
                    var (relay, log, relayErrors) = RelayCommand.Load(path, [], []);
                    errors = relayErrors;
                    effective = RelaySettings.ToJson(relay, log);
                    exposed = ExposedSecrets.Of(relay);
                    if (errors.Count == 0)
                    {
                        fitted = Fitted(relay, RelayHost.Fit(relay, NullLogger.Instance));
                    }
                    break;
            }
            // Warnings only: the exit code is the errors'. Escaped as the errors are: they quote the paths of settings.
            foreach (var warning in exposed)
            {
                await Console.Error.WriteLineAsync($"warning: {EscapingLoggerFactory.Escape(warning)}").ConfigureAwait(false);
            }
            if (errors.Count > 0)
            {
                await RelayCommand.ReportErrors(errors).ConfigureAwait(false);
                return 1;
            }
            if (StandardOutput.TryWriteLine(Console.Out, effective ?? $"{path}: valid {role} settings") is { } failure)
            {
                // The settings are valid, but a script reading the effective ones would get none: not a success.
                await Console.Error.WriteLineAsync($"passage config check: the settings are valid, but they cannot be written to standard output: {failure}").ConfigureAwait(false);
                return 1;
            }
            foreach (var line in fitted)
            {
                await Console.Error.WriteLineAsync(line).ConfigureAwait(false);
            }
            return 0;
        });
        return new Command("config", "Work with settings files") { check };
    }

    /// <summary>
    /// A line for each setting that a relay started here would run with at another value than <paramref name="configured"/>
    /// (<paramref name="fitted"/>: what <see cref="RelayHost.Fit"/>, which a start runs, makes of it), such as
    /// <c>relay.streamWindow: 131072 at start (configured 4194304; fitted to memory)</c>, then what they were fitted to;
    /// none when every value is used as configured. The printed configuration keeps the configured values, so that it
    /// reads back as the same settings.
    /// </summary>
    private static IReadOnlyList<string> Fitted(RelayOptions configured, RelayOptions fitted)
    {
        (string Key, int? Configured, int? Fitted, string Why)[] settings =
        [
            ("relay.maxConnections", configured.Limits.MaxConnections, fitted.Limits.MaxConnections, "fitted to the open-file limit"),
            ("relay.maxTunnels", configured.Connect?.MaxTunnels, fitted.Connect?.MaxTunnels, "fitted to the open-file limit"),
            ("relay.streamWindow", configured.Connect?.StreamWindowBytes, fitted.Connect?.StreamWindowBytes, "fitted to memory"),
        ];
        List<string> lines = [.. settings.Where(s => s.Configured != s.Fitted).Select(s => $"{s.Key}: {s.Fitted} at start (configured {s.Configured}; {s.Why})")];
        if (lines.Count > 0)
        {
            lines.Add("(fitted to the open-file limit and the memory of this process: a relay started under other limits, such as systemd's "
                + "LimitNOFILE= or a container's memory limit, fits to those)");
        }
        return lines;
    }

    /// <summary>Which role a file configures, from its top-level sections; relay when unclear (its reader names the problem).</summary>
    private static string RoleOf(string path)
    {
        if (path.Length == 0)
        {
            return "relay";
        }
        try
        {
            // Read as the settings readers read it (JsonSettingsFile): a file saved as UTF-16 is told apart too.
            using var json = JsonSettingsFile.Parse(CliSettings.ReadFile(path));
            if (json.RootElement.ValueKind == JsonValueKind.Object)
            {
                var sections = json.RootElement.EnumerateObject().Select(p => p.Name.ToLowerInvariant()).ToHashSet();
                if (sections.Contains("general"))
                {
                    return "tunnel";
                }
                if (sections.Contains("client"))
                {
                    return "client";
                }
            }
        }
        catch (Exception e) when (e is JsonException or InvalidTextException or IOException or UnauthorizedAccessException)
        {
            // The relay reader reports the file's problem with the usual wording.
        }
        return "relay";
    }
}
