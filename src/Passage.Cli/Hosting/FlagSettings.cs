using System.CommandLine;

namespace Passage.Cli.Hosting;

/// <summary>
/// Turns parsed flags into configuration keys with the same names as in the JSON file, so flags
/// are simply the last settings layer. Malformed pairs are collected as errors naming the flag.
/// </summary>
internal sealed class FlagSettings(ParseResult parse)
{
    private readonly FlagValues _values = new();

    /// <summary>The settings the flags give, each key with the flag that gave it (<see cref="FlagValues.Names"/>).</summary>
    public FlagValues Values => _values;

    public List<string> Errors { get; } = new();

    public void Scalar(Option<string?> option, string key)
    {
        if (parse.GetValue(option) is { } value)
        {
            _values.Add(option, key, value);
        }
    }

    public void List(Option<string[]> option, string key)
    {
        var values = parse.GetValue(option) ?? [];
        for (var i = 0; i < values.Length; i++)
        {
            _values.Add(option, key, values[i], $"{key}:{i}");
        }
    }

    /// <summary>
    /// A boolean flag, only when given: System.CommandLine gives one left off an implicit result (false), which would
    /// override the file's setting.
    /// </summary>
    public void Switch(Option<bool> option, string key)
    {
        if (parse.GetResult(option) is { Implicit: false })
        {
            _values.Add(option, key, parse.GetValue(option) ? "true" : "false");
        }
    }

    /// <summary>
    /// Repeated <c>NAME{separator}VALUE</c> flags into a map under <paramref name="key"/>. Values are never echoed in errors;
    /// with <paramref name="secretValues"/> (passwords) neither is a flag without the separator, which may be all value.
    /// A name given twice (in any case: settings' keys ignore it, as a file's do) is an error naming the flag and the name.
    /// </summary>
    /// <remarks>
    /// The configuration takes its keys one each: a second <c>--route a.example=...</c> threw out of the settings' reading, and
    /// the command ended in a stack trace instead of an error.
    /// </remarks>
    public void Pairs(Option<string[]> option, string key, char separator, string shape, bool secretValues = false)
    {
        var number = 0;
        var names = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var pair in parse.GetValue(option) ?? [])
        {
            number++;
            var at = pair.IndexOf(separator, StringComparison.Ordinal);
            if (at <= 0)
            {
                Errors.Add(secretValues
                    ? $"{option.Name} (number {number} of those given): expected {shape}"
                    : $"{option.Name} '{pair.Split(separator)[0]}': expected {shape}");
                continue;
            }
            var name = pair[..at].Trim();
            if (!names.Add(name))
            {
                Errors.Add($"{option.Name} '{name}': given twice (names are told apart ignoring case); give each once");
                continue;
            }
            _values.Add(option, key, pair[(at + 1)..].Trim(), $"{key}:{name}");
        }
    }
}

/// <summary>
/// The settings flags give, as configuration keys and values, and for each key the flag it came from: an error about a
/// setting from the command line names the flag the user typed (<c>--connect-timeout</c>), not only the key.
/// </summary>
internal sealed class FlagValues : List<KeyValuePair<string, string?>>
{
    private readonly Dictionary<string, string> _names = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>Each setting's key (<c>relay:connectTimeout</c>) and the flag that set it.</summary>
    public IReadOnlyDictionary<string, string> Names => _names;

    /// <summary>Adds <paramref name="value"/> under <paramref name="entry"/> (a list's or map's entry), or under <paramref name="key"/>.</summary>
    public void Add(Option option, string key, string? value, string? entry = null)
    {
        Add(new KeyValuePair<string, string?>(entry ?? key, value));
        _names[key] = option.Name;
    }
}
