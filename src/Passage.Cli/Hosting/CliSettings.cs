using Microsoft.Extensions.Configuration;
using Passage.Configuration;

namespace Passage.Cli.Hosting;

/// <summary>
/// Builds the settings layers of a command: the JSON file (comments allowed), then environment
/// variables <c>PASSAGE__SECTION__KEY</c>, then flags; a later layer wins.
/// </summary>
internal static class CliSettings
{
    /// <summary>The largest settings file read, room for tens of thousands of routes or rules; a larger one is an error.</summary>
    public const int MaxFileSize = 16 * 1024 * 1024;

    /// <summary>
    /// The bytes of the settings file <paramref name="configFile"/>: a regular file of at most <see cref="MaxFileSize"/>
    /// bytes (a FIFO or a device is refused before it is opened, with an <see cref="InputFileException"/> saying what it is).
    /// </summary>
    public static byte[] ReadFile(string configFile) => InputFile.ReadAll(configFile, MaxFileSize);

    /// <summary>The error for a settings file given with an empty name.</summary>
    public const string EmptyFileName = "the settings file's name is empty";

    /// <summary>The layers, or the errors that prevent reading them (a missing file, broken JSON).</summary>
    public static (IReadOnlyList<SettingsLayer> Layers, IReadOnlyList<string> Errors) Build(string? configFile, IEnumerable<KeyValuePair<string, string?>> flags)
    {
        var layers = new List<SettingsLayer>();
        var errors = new List<string>();
        if (configFile is { Length: 0 })
        {
            // An unset shell variable (--config "$FILE"): no file to read, and the defaults alone would start.
            errors.Add(EmptyFileName);
        }
        else if (configFile is not null)
        {
            try
            {
                layers.Add(new SettingsLayer(configFile, JsonSettingsFile.Read(ReadFile(configFile))));
            }
            catch (FileNotFoundException)
            {
                errors.Add($"{configFile}: no such file");
            }
            catch (InputFileException e)
            {
                errors.Add(e.Message);
            }
            catch (UnauthorizedAccessException e)
            {
                errors.Add($"{configFile}: cannot be read: {e.Message}");
            }
            catch (DuplicateSettingException e)
            {
                errors.Add($"{SettingsReader.Display(e.Key)}: set twice in {configFile}; a key holds one value");
            }
            catch (KeyWithColonException e)
            {
                errors.Add(e.IsEntry
                    ? $"{e.Written}: a key cannot hold a colon (in {configFile}): settings would read it as a path below {e.Path} (what follows the colon in a map entry's name is not shown: it may be a password)"
                    : $"{e.Written}: a key cannot hold a colon (in {configFile}): settings would read it as the path {e.Path}");
            }
            catch (InvalidTextException e)
            {
                errors.Add($"{configFile}: {e.Message}");
            }
            catch (IOException e)
            {
                // Opening or reading failed (a loop of links, a name too long, an I/O error): nothing was read, so it was not
                // "not valid JSON", which sent the operator to look for a syntax error in a file that may be fine.
                errors.Add($"{configFile}: cannot be read: {e.Message}");
            }
            catch (Exception e) when (e is FormatException or InvalidDataException or System.Text.Json.JsonException)
            {
                errors.Add($"{configFile}: not valid JSON{Where(e)}");
            }
        }
        layers.Add(new SettingsLayer(SettingsLayer.Environment, new ConfigurationBuilder().AddEnvironmentVariables(SettingsReader.EnvironmentPrefix).Build()));
        layers.Add(new SettingsLayer(SettingsLayer.Flags, new ConfigurationBuilder().AddInMemoryCollection(flags).Build()) { Names = (flags as FlagValues)?.Names });
        return (layers, errors);
    }

    /// <summary>
    /// The errors a command reports of its settings: those of the flags' syntax (<paramref name="flagErrors"/>) and the
    /// <paramref name="reader"/>'s; when the settings file could not be read (<paramref name="fileErrors"/>), its errors and
    /// the flags' alone.
    /// </summary>
    /// <remarks>
    /// What a file that was not read holds is unknown: a setting the reader found missing may be in it (a client's relays:
    /// "no relay"), and <c>config check</c>, which tells from the file whose settings it holds, called the variables of a
    /// client's or a tunnel's unknown. The check and the start said different things of one file; each says its error.
    /// </remarks>
    public static IReadOnlyList<string> Errors(IReadOnlyList<string> fileErrors, IEnumerable<string> flagErrors, SettingsReader reader) =>
        fileErrors.Count > 0 ? [.. fileErrors, .. flagErrors] : [.. flagErrors, .. reader.Errors];

    /// <summary>
    /// Where the JSON reader stopped, 1-based (": line 3, byte 14: ..."; the byte counted in the line as the file holds it,
    /// see <see cref="JsonSettingsFile.Parse(byte[])"/>), from the JsonException; the innermost message when there is none.
    /// </summary>
    private static string Where(Exception e)
    {
        var innermost = e;
        for (var inner = e; inner is not null; inner = inner.InnerException)
        {
            innermost = inner;
            if (inner is System.Text.Json.JsonException { LineNumber: { } line } json)
            {
                return $": line {line + 1}, byte {(json.BytePositionInLine ?? 0) + 1}: {json.Message}";
            }
        }
        return ": " + innermost.Message;
    }
}
