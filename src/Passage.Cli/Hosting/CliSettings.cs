using Microsoft.Extensions.Configuration;
using Passage.Configuration;

namespace Passage.Cli.Hosting;

/// <summary>
/// Builds the settings layers of a command: the JSON file (comments allowed), then environment
/// variables <c>PASSAGE__SECTION__KEY</c>, then flags; a later layer wins.
/// </summary>
internal static class CliSettings
{
    public const string EnvironmentPrefix = "PASSAGE__";

    /// <summary>The layers, or the errors that prevent reading them (a missing file, broken JSON).</summary>
    public static (IReadOnlyList<SettingsLayer> Layers, IReadOnlyList<string> Errors) Build(string? configFile, IEnumerable<KeyValuePair<string, string?>> flags)
    {
        var layers = new List<SettingsLayer>();
        var errors = new List<string>();
        if (configFile is not null)
        {
            var path = Path.GetFullPath(configFile);
            if (!File.Exists(path))
            {
                errors.Add($"{configFile}: no such file");
            }
            else
            {
                try
                {
                    var file = new ConfigurationBuilder()
                        .AddJsonFile(new Microsoft.Extensions.FileProviders.PhysicalFileProvider(Path.GetDirectoryName(path)!), Path.GetFileName(path), optional: false, reloadOnChange: false)
                        .Build();
                    layers.Add(new SettingsLayer(configFile, file));
                }
                catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException or IOException)
                {
                    errors.Add($"{configFile}: not valid JSON: {(e.InnerException ?? e).Message}");
                }
            }
        }
        layers.Add(new SettingsLayer("environment", new ConfigurationBuilder().AddEnvironmentVariables(EnvironmentPrefix).Build()));
        layers.Add(new SettingsLayer("flags", new ConfigurationBuilder().AddInMemoryCollection(flags).Build()));
        return (layers, errors);
    }
}
