using Microsoft.Extensions.Configuration;

namespace Passage.Configuration;

/// <summary>One source of settings (a file, the environment, the command line) and its name for messages.</summary>
/// <param name="Source">Shown after an error, e.g. <c>relay.json</c>, <c>environment</c>, <c>flags</c>.</param>
/// <param name="Configuration">The settings, keyed as in the JSON file (<c>relay:idleTimeout</c>).</param>
public sealed record SettingsLayer(string Source, IConfiguration Configuration)
{
    /// <summary>The <see cref="Source"/> of the environment variables' layer (a file's is its path).</summary>
    public const string Environment = "environment";

    /// <summary>The <see cref="Source"/> of the command line's layer.</summary>
    public const string Flags = "flags";

    /// <summary>
    /// What set each key, where that is more precise than <see cref="Source"/>: on the command line, the flag
    /// (<c>relay:connectTimeout</c> → <c>--connect-timeout</c>). Keys are as in the JSON file, without list indexes.
    /// </summary>
    public IReadOnlyDictionary<string, string>? Names { get; init; }

    /// <summary>
    /// Where the setting an error names (<c>relay.allow[0]</c>, dotted as errors show keys) came from: its flag
    /// (<see cref="Names"/>); in the environment, its variable (<c>PASSAGE__RELAY__MAXTUNNELS</c>; a list's entry, the one
    /// variable split at commas, <c>PASSAGE__RELAY__ALLOW</c>, or its own, <c>PASSAGE__RELAY__ALLOW__2</c>); or else
    /// <see cref="Source"/>.
    /// </summary>
    public string SourceOf(string displayKey)
    {
        var entry = displayKey.IndexOf('[', StringComparison.Ordinal);
        var key = (entry > 0 ? displayKey[..entry] : displayKey).Replace('.', ':');
        if (Names is not null && Names.TryGetValue(key, out var name))
        {
            return name;
        }
        if (Source != Environment)
        {
            return Source;
        }
        var variable = SettingsReader.VariableOf(key);
        // A list's entry is named by its position; indexed variables may skip an index, so the position finds the variable.
        if (entry > 0 && Configuration[key] is null
            && int.TryParse(displayKey.AsSpan(entry + 1).TrimEnd(']'), out var position)
            && SettingsReader.ListEntries(Configuration.GetSection(key)) is { } entries && position < entries.Length)
        {
            return AsSet($"{variable}__{entries[position].Key}", entries[position].Value);
        }
        // Not set itself, but by variables below it (PASSAGE__RELAY__ALLOW__01: an object where a list goes): those are named,
        // not the key's own variable, which is set nowhere.
        return !IsSet(variable) && VariablesSetting(key) is { Count: > 0 } below ? string.Join(", ", below) : AsSet(variable, Configuration[key]);
    }

    private bool IsSet(string variable) => VariableNames.Any(name => name.Equals(variable, StringComparison.OrdinalIgnoreCase));

    /// <summary>
    /// The environment whose variables <see cref="SourceOf"/> names: null for the process's own, which the layer is read from.
    /// </summary>
    internal System.Collections.IDictionary? Variables { get; init; }

    /// <summary>
    /// The variables, spelled as the environment has them, that set <paramref name="key"/> (<c>relay:colour</c>) or a key
    /// below it, read as the configuration reads them (the prefix in any case, <c>__</c> for each colon), in ordinal order:
    /// what an error about a key that no reader knows names, which has no spelling of its own to show.
    /// </summary>
    internal IReadOnlyList<string> VariablesSetting(string key) =>
        VariableNames
            .Where(name => name.Replace("__", ":", StringComparison.Ordinal) is var path
                && path.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
                && path.AsSpan(Prefix.Length) is var rest
                && (rest.Equals(key, StringComparison.OrdinalIgnoreCase)
                    || (rest.StartsWith(key, StringComparison.OrdinalIgnoreCase) && rest[key.Length..].StartsWith(':'))))
            .Order(StringComparer.Ordinal)
            .ToArray();

    /// <summary>The names of the environment's variables, all of them, in no order.</summary>
    internal IEnumerable<string> VariableNames => (Variables ?? System.Environment.GetEnvironmentVariables()).Keys.Cast<string>();

    // The environment's prefix as the configuration reads it, its __ a colon.
    private static readonly string Prefix = SettingsReader.EnvironmentPrefix.Replace("__", ":", StringComparison.Ordinal);

    /// <summary>
    /// <paramref name="variable"/> spelled as the environment has it: settings read variable names ignoring case, so
    /// <c>PASSAGE__CLIENT__HttpUsers__alice</c> sets a user, and an error about it must not send the operator looking for
    /// <c>PASSAGE__CLIENT__HTTPUSERS__ALICE</c>, which is nowhere. Of several variables that differ only in case, each sets
    /// the key and the configuration kept one, in an order that differs from run to run: the one holding the
    /// <paramref name="value"/> read is named, not one whose value the error does not quote. As given when no variable has
    /// that name.
    /// </summary>
    private string AsSet(string variable, string? value)
    {
        var named = (Variables ?? System.Environment.GetEnvironmentVariables()).Cast<System.Collections.DictionaryEntry>()
            .Where(v => v.Key is string name && name.Equals(variable, StringComparison.OrdinalIgnoreCase))
            .OrderBy(v => (string)v.Key != variable).ThenBy(v => (string)v.Key, StringComparer.Ordinal).ToArray();
        return named.Where(v => Equals(v.Value, value)).Concat(named).Select(v => (string)v.Key).FirstOrDefault() ?? variable;
    }
}
