using System.CommandLine;

namespace Passage.Cli.Hosting;

/// <summary>
/// Turns parsed flags into configuration keys with the same names as in the JSON file, so flags
/// are simply the last settings layer. Malformed pairs are collected as errors naming the flag.
/// </summary>
internal sealed class FlagSettings(ParseResult parse)
{
    private readonly List<KeyValuePair<string, string?>> _values = new();

    public IReadOnlyList<KeyValuePair<string, string?>> Values => _values;

    public List<string> Errors { get; } = new();

    public void Scalar(Option<string?> option, string key)
    {
        if (parse.GetValue(option) is { } value)
        {
            _values.Add(new(key, value));
        }
    }

    public void List(Option<string[]> option, string key)
    {
        var values = parse.GetValue(option) ?? [];
        for (var i = 0; i < values.Length; i++)
        {
            _values.Add(new($"{key}:{i}", values[i]));
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
            _values.Add(new(key, parse.GetValue(option) ? "true" : "false"));
        }
    }

    /// <summary>
    /// Repeated <c>NAME{separator}VALUE</c> flags into a map under <paramref name="key"/>. Values are never echoed in errors;
    /// with <paramref name="secretValues"/> (passwords) neither is a flag without the separator, which may be all value.
    /// </summary>
    public void Pairs(Option<string[]> option, string key, char separator, string shape, bool secretValues = false)
    {
        var number = 0;
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
            _values.Add(new($"{key}:{pair[..at].Trim()}", pair[(at + 1)..].Trim()));
        }
    }
}
