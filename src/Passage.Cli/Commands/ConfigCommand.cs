using System.CommandLine;
using System.Text.Json;
using Passage.Cli.Hosting;
using Passage.Client;
using Passage.Configuration;
using Passage.Relay;
using Passage.Telemetry;

namespace Passage.Cli.Commands;

/// <summary>
/// <c>passage config check FILE</c>: prints the effective relay configuration, or every error in the
/// file; tunnel and client files (told apart by their sections) are validated the same way.
/// </summary>
internal static class ConfigCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The JSON settings file to check" };
        var check = new Command("check", "Check a settings file (relay, tunnel or client, told apart by its sections) with PASSAGE__ environment variables applied: print the effective relay configuration with defaults filled in, or every error, each naming its key. Exit 0 when valid, 1 otherwise.")
        {
            file,
        };
        check.SetAction(async parse =>
        {
            var path = parse.GetValue(file)!;
            var role = RoleOf(path);
            IReadOnlyList<string> errors;
            string? effective = null;
            switch (role)
            {
                case "tunnel":
                    errors = TunnelCommand.Load(path, []).Errors;
                    break;
                case "client":
                    var (layers, fileErrors) = CliSettings.Build(path, []);
                    var reader = new SettingsReader(layers);
                    ClientSettings.Read(reader);
                    LogOptions.Read(reader, LoggingSetup.JournalAttached);
                    errors = [.. fileErrors, .. reader.Errors];
                    break;
                default:
                    var (relay, log, relayErrors) = RelayCommand.Load(path, [], []);
                    errors = relayErrors;
                    effective = RelaySettings.ToJson(relay, log);
                    break;
            }
            if (errors.Count > 0)
            {
                await RelayCommand.ReportErrors(errors).ConfigureAwait(false);
                return 1;
            }
            await Console.Out.WriteLineAsync(effective ?? $"{path}: valid {role} settings").ConfigureAwait(false);
            return 0;
        });
        return new Command("config", "Work with settings files") { check };
    }

    /// <summary>Which role a file configures, from its top-level sections; relay when unclear (its reader names the problem).</summary>
    private static string RoleOf(string path)
    {
        try
        {
            using var json = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
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
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            // The relay reader reports the file's problem with the usual wording.
        }
        return "relay";
    }
}
