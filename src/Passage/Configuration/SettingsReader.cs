using System.Globalization;
using Microsoft.Extensions.Configuration;

namespace Passage.Configuration;

/// <summary>
/// Reads typed settings from layers (file, then environment, then flags; a later layer wins) and
/// collects every error, each naming its key, so that a bad configuration is reported at once.
/// </summary>
/// <remarks>
/// A key set in a later layer replaces the whole value of earlier ones, lists and maps included:
/// <c>--passthrough 127.0.0.1:1</c> replaces the file's list rather than overwriting its first entry.
/// Keys are shown as in the JSON file, dotted: <c>relay.idleTimeout</c>.
/// </remarks>
public sealed class SettingsReader
{
    private readonly IReadOnlyList<SettingsLayer> _layers;
    private readonly List<string> _errors = new();

    // Entries split at commas from one string that holds a ~regex, by their dotted key ("relay.allow[0]"): the list's
    // key, whose first error hints that a comma inside a pattern split it too.
    private readonly Dictionary<string, string> _splitWithRegex = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _hinted = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>What the environment variables of Passage's settings begin with: <c>PASSAGE__RELAY__ALLOW</c> sets <c>relay:allow</c>.</summary>
    internal const string EnvironmentPrefix = "PASSAGE__";

    /// <summary>The environment variable that sets <paramref name="key"/>: <c>relay:allow</c> → <c>PASSAGE__RELAY__ALLOW</c>.</summary>
    internal static string VariableOf(string key) => EnvironmentPrefix + key.Replace(":", "__", StringComparison.Ordinal).ToUpperInvariant();

    /// <summary>Reads from <paramref name="layers"/>, lowest precedence first.</summary>
    public SettingsReader(IReadOnlyList<SettingsLayer> layers) => _layers = layers;

    /// <summary>Every error found so far.</summary>
    public IReadOnlyList<string> Errors => _errors;

    /// <summary>Records an error about <paramref name="key"/>.</summary>
    public void AddError(string key, string message, SettingsLayer? layer = null) =>
        AddMessage($"{Display(key)}: {message}", layer);

    /// <summary>
    /// Records an error about <paramref name="key"/>'s value as found where it was set, naming that place (a file, a
    /// variable, a flag) as an error about its syntax does: for a file it names that is missing, say.
    /// </summary>
    public void AddErrorWhereSet(string key, string message) => AddError(key, message, Find(key));

    /// <summary>
    /// For the first error in a list split at commas from one string holding a <c>~regex</c>: that a comma in the pattern
    /// split it as well, and how to give each entry whole (its own environment variable, <c>PASSAGE__RELAY__ALLOW__0</c>;
    /// in a file, a JSON list). Empty otherwise.
    /// </summary>
    private string SplitHint(string entry, SettingsLayer? layer)
    {
        if (!_splitWithRegex.TryGetValue(entry, out var list) || !_hinted.Add(list))
        {
            return "";
        }
        if (layer?.Source == SettingsLayer.Environment)
        {
            var variable = VariableOf(list);
            return $"; {variable} is split at commas, a ~regex's too: give each entry its own variable, {variable}__0, {variable}__1, ...";
        }
        return "; a list written as one string is split at commas, a ~regex's too: write it as a list, one string each";
    }

    /// <summary>Records an error whose text already names its key.</summary>
    public void AddMessage(string message, SettingsLayer? layer = null)
    {
        // The key a message names comes first, dotted ("relay.allow[0]: ..."): keys hold no colon of their own.
        var key = message.IndexOf(':', StringComparison.Ordinal) is > 0 and var end ? message[..end] : null;
        message += key is null ? "" : SplitHint(key, layer);
        _errors.Add(layer is null ? message : $"{message} (from {(key is null ? layer.Source : layer.SourceOf(key))})");
    }

    /// <summary>The raw text of a scalar key from the top layer that sets it, or null.</summary>
    public string? GetString(string key) => Find(key) is { } hit ? hit.Configuration[key] : null;

    /// <summary>
    /// The endpoint to listen on that the scalar <paramref name="key"/> names (<see cref="ListenEndpoint"/>), or null when it
    /// is not set; one that is no endpoint is an error naming the key, and null.
    /// </summary>
    public System.Net.IPEndPoint? GetListenEndpoint(string key)
    {
        if (GetString(key) is not { Length: > 0 } text)
        {
            return null;
        }
        if (ListenEndpoint.TryParse(text, out var endpoint, out var error))
        {
            return endpoint;
        }
        // Named where it was set, as every other value's error is: the flag (--admin), the variable, the file.
        AddErrorWhereSet(key, $"'{text}': {error}");
        return null;
    }

    /// <summary>
    /// Refuses an address and port (not port 0, which the system picks anew for each) that two of <paramref name="listeners"/>
    /// (a setting's key and the endpoints it listens on) are given, naming the later setting where it was set and the
    /// earlier: listeners on one address and port share its connections, or the second fails to bind at start, where
    /// <c>config check</c> had passed the settings. A wildcard address takes its port on every address it stands for
    /// (<see cref="Overlap"/>): <c>0.0.0.0:8443</c> beside <c>127.0.0.1:8443</c> is refused too.
    /// </summary>
    public void CheckListenersApart(params (string Key, IReadOnlyList<System.Net.IPEndPoint> Endpoints)[] listeners)
    {
        var seen = new List<(string Key, System.Net.IPEndPoint Endpoint)>();
        foreach (var (key, endpoints) in listeners)
        {
            foreach (var endpoint in endpoints)
            {
                if (endpoint.Port == 0 || seen.FirstOrDefault(l => l.Key != key && Overlap(l.Endpoint, endpoint)) is not { Key: { } first, Endpoint: var other })
                {
                    continue;
                }
                var wildcard = new[] { other.Address, endpoint.Address }.Where(IsWildcard).OrderBy(a => a.Equals(System.Net.IPAddress.Any)).FirstOrDefault();
                AddErrorWhereSet(key, other.Equals(endpoint) || wildcard is null
                    ? $"{endpoint} is {Display(first)}'s too: one address and port serves one listener (two would share its connections, or the second could not listen)"
                    : $"{endpoint} and {Display(first)}'s {other} take one port on one address ({(wildcard.Equals(System.Net.IPAddress.Any) ? "0.0.0.0 stands for every IPv4 address" : "[::] stands for every address, IPv4 ones too")}): the second could not listen");
            }
            seen.AddRange(endpoints.Select(e => (key, e)));
        }
    }

    /// <summary>
    /// Whether listeners on <paramref name="a"/> and <paramref name="b"/> would take one port on one address, as the system
    /// binds them: the same address, or a wildcard and an address it stands for (<c>0.0.0.0</c> every IPv4 address,
    /// <c>[::]</c>, which the listeners open for both families, every address).
    /// </summary>
    internal static bool Overlap(System.Net.IPEndPoint a, System.Net.IPEndPoint b)
    {
        if (a.Port != b.Port)
        {
            return false;
        }
        var (x, y) = (Unmapped(a.Address), Unmapped(b.Address));
        return x.Equals(y) || StandsFor(x, y) || StandsFor(y, x);

        static System.Net.IPAddress Unmapped(System.Net.IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;

        static bool StandsFor(System.Net.IPAddress wildcard, System.Net.IPAddress address) =>
            wildcard.Equals(System.Net.IPAddress.IPv6Any)
            || (wildcard.Equals(System.Net.IPAddress.Any) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork);
    }

    private static bool IsWildcard(System.Net.IPAddress address) =>
        address.Equals(System.Net.IPAddress.Any) || address.Equals(System.Net.IPAddress.IPv6Any);

    /// <summary>A boolean (<c>true</c>/<c>false</c>); <paramref name="fallback"/> when unset.</summary>
    public bool GetBool(string key, bool fallback) => Get(key, fallback, "true or false", static (string s, out bool v) => bool.TryParse(s, out v));

    /// <summary>An integer within [<paramref name="min"/>, <paramref name="max"/>]; <paramref name="fallback"/> when unset.</summary>
    public int GetInt(string key, int fallback, int min, int max)
    {
        var value = Get(key, fallback, $"a whole number from {min} to {max}",
            (string s, out int v) => int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out v) && v >= min && v <= max);
        return value;
    }

    /// <summary>
    /// A duration (see <see cref="Duration"/>), positive unless <paramref name="allowInfinite"/> or
    /// <paramref name="allowZero"/> (for settings that zero turns off), and no shorter than <paramref name="atLeast"/> when given;
    /// a number without its unit is milliseconds where <paramref name="bareMilliseconds"/>, else an error.
    /// </summary>
    public TimeSpan GetDuration(string key, TimeSpan fallback, bool allowInfinite = false, bool allowZero = false, TimeSpan? atLeast = null, bool bareMilliseconds = false)
    {
        // With a least, that comes first: the general examples begin at 500ms, and "'500ms' is not a duration such as 500ms,
        // ..., 1s or more" read as if the value were malformed.
        var expected = atLeast is { } least ? $"a duration of {Duration.Format(least)} or more, such as {Duration.Format(least * 5)}, 30s or 5m (at most 30d)"
            : allowInfinite ? Duration.Expected + ", or infinite"
            : allowZero ? Duration.Expected + ", or 0 for none"
            : Duration.Expected + ", above zero";
        return Get(key, fallback, expected, (string s, out TimeSpan v) =>
            Duration.TryParse(s, out v, bareMilliseconds)
            && (v > TimeSpan.Zero || (allowZero && v == TimeSpan.Zero) || (allowInfinite && v == Timeout.InfiniteTimeSpan))
            && (atLeast is not { } minimum || v >= minimum));
    }

    /// <summary>One of <paramref name="choices"/> (case-insensitive), returned in its canonical spelling.</summary>
    public string GetChoice(string key, string fallback, params string[] choices)
    {
        return Get(key, fallback, "one of " + string.Join(", ", choices), (string s, out string v) =>
        {
            v = choices.FirstOrDefault(c => c.Equals(s.Trim(), StringComparison.OrdinalIgnoreCase)) ?? "";
            return v.Length > 0;
        });
    }

    /// <summary>
    /// The list at <paramref name="key"/> as plain values, with the layer they came from. A list with an entry that is
    /// not a text value (reported) gives no values: the readers of plain values number their errors by position, and
    /// would number the entries after it wrongly; the configuration is refused either way.
    /// </summary>
    public (IReadOnlyList<string> Values, SettingsLayer? Layer) GetValues(string key)
    {
        var list = ReadList(key, out var whole);
        return (whole ? list.Select(e => e.Value).ToArray() : [], list.Count > 0 ? list[0].Layer : null);
    }

    /// <summary>
    /// A list from the top layer that sets it: a JSON array (or indexed keys), or a single string holding
    /// comma-separated entries. Each entry comes with its display key for messages (<c>relay.allow[2]</c>, its
    /// position). An object where the list goes, an entry that is an object or list, and a variable without an entry are
    /// errors and give nothing.
    /// </summary>
    public IReadOnlyList<(string Key, string Value, SettingsLayer Layer)> GetList(string key) => ReadList(key, out _);

    private IReadOnlyList<(string Key, string Value, SettingsLayer Layer)> ReadList(string key, out bool whole)
    {
        whole = true;
        if (Find(key) is not { } hit)
        {
            return Array.Empty<(string, string, SettingsLayer)>();
        }
        var section = hit.Configuration.GetSection(key);
        if (section.Value is { } single)
        {
            if (section.GetChildren().Any())
            {
                // Only variables can give a list both ways (PASSAGE__RELAY__DENY and PASSAGE__RELAY__DENY__0): the entries of
                // the numbered ones were left out without a word, a deny rule among them.
                var variable = VariableOf(key);
                AddError(key, $"given both as {variable} and as numbered variables ({variable}__0, ...); give the list one way", hit);
                whole = false;
                return Array.Empty<(string, string, SettingsLayer)>();
            }
            var entries = single.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select((v, i) => ($"{key}[{i}]", v, hit)).ToArray();
            if (entries.Length == 0 && hit.Source == SettingsLayer.Environment)
            {
                // An unset shell variable (PASSAGE__RELAY__CLIENTIDS="$IDS"): read as no entries, it replaced the list of
                // the layers below whole, so that a relay's client pins or deny rules were dropped without a word. (A file's
                // empty list, [], reads as an empty string too, and is one.)
                AddError(key, "empty; leave the setting out, or give it at least one entry", hit);
                whole = false;
                return Array.Empty<(string, string, SettingsLayer)>();
            }
            if (entries.Length > 1 && entries.Any(e => e.v.StartsWith('~')))
            {
                foreach (var (entryKey, _, _) in entries)
                {
                    _splitWithRegex[Display(entryKey)] = key;
                }
            }
            return entries;
        }
        // A JSON list reads as children named 0, 1, ...; so do indexed variables (PASSAGE__RELAY__ALLOW__0), which may skip
        // an index. Any other name means an object was written where a list goes: its values are not taken for one.
        var children = ListEntries(section);
        if (children is null)
        {
            AddError(key, "expected a list, not an object", hit);
            return Array.Empty<(string, string, SettingsLayer)>();
        }
        var list = new List<(string, string, SettingsLayer)>(children.Length);
        for (var i = 0; i < children.Length; i++)
        {
            if (children[i].Value is null && children[i].GetChildren().Any())
            {
                AddError($"{key}[{i}]", "expected a text value, not an object or list", hit);
                whole = false;
                continue;
            }
            list.Add(($"{key}[{i}]", children[i].Value ?? "", hit));
        }
        return list;
    }

    /// <summary>A list's entries in order, or null when <paramref name="section"/> has a child that is not a list index.</summary>
    internal static IConfigurationSection[]? ListEntries(IConfigurationSection section)
    {
        var children = section.GetChildren().ToArray();
        return children.All(c => IsIndex(c.Key))
            ? children.OrderBy(c => int.Parse(c.Key, NumberStyles.None, CultureInfo.InvariantCulture)).ToArray()
            : null;
    }

    /// <summary>A list index as the configuration names it: digits without a leading zero, within an int.</summary>
    private static bool IsIndex(string name) =>
        name.Length > 0 && name.All(char.IsAsciiDigit) && (name.Length == 1 || name[0] != '0')
        && int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out _);

    /// <summary>
    /// A map (JSON object) from the top layer that sets it: name to text value. A single value, a list, and an
    /// entry whose value is an object or list are errors (<paramref name="expected"/> says what to write instead)
    /// and are left out.
    /// </summary>
    /// <remarks>
    /// The configuration reads a JSON list as a map whose names are its indexes, so a map whose names are exactly
    /// <c>0</c>, <c>1</c>, ... is taken for a list and refused: read as a map it would hold names nobody wrote.
    /// </remarks>
    public IReadOnlyList<(string Key, string Name, string Value, SettingsLayer Layer)> GetMap(string key, string expected = "an object of name: value pairs")
    {
        if (Find(key) is not { } hit)
        {
            return Array.Empty<(string, string, string, SettingsLayer)>();
        }
        var section = hit.Configuration.GetSection(key);
        if (section.Value is not null)
        {
            AddError(key, $"expected {expected}, not a single value", hit);
            return Array.Empty<(string, string, string, SettingsLayer)>();
        }
        var children = section.GetChildren().ToArray();
        if (IsList(children))
        {
            AddError(key, $"expected {expected}, not a list", hit);
            return Array.Empty<(string, string, string, SettingsLayer)>();
        }
        var entries = new List<(string, string, string, SettingsLayer)>(children.Length);
        foreach (var child in children)
        {
            if (child.Value is null && child.GetChildren().Any())
            {
                AddError(child.Path, "expected a text value, not an object or list", hit);
                continue;
            }
            entries.Add((child.Path, child.Key, child.Value ?? "", hit));
        }
        return entries;
    }

    private static bool IsList(IReadOnlyList<IConfigurationSection> children)
    {
        if (children.Count == 0)
        {
            return false;
        }
        var indexes = new HashSet<int>();
        foreach (var child in children)
        {
            if (!IsIndex(child.Key) || int.Parse(child.Key, CultureInfo.InvariantCulture) is var index && index >= children.Count)
            {
                return false;
            }
            indexes.Add(index);
        }
        return indexes.Count == children.Count;
    }

    /// <summary>
    /// Reports every key that no reader knows, and every section that is given a single value (<c>"relay": 5</c>,
    /// <c>PASSAGE__LOG=debug</c>): the readers ask for the keys inside it, find none, and would take the defaults as if it
    /// had not been written. <paramref name="known"/> lists the known keys; a key ending in <c>:*</c> accepts any key below
    /// it (lists and maps). An empty value (<c>"log": []</c>) sets nothing and is no error. Reported too: in the environment, a
    /// variable one underscore short of the prefix that reads as a setting (<see cref="CheckVariablesOneUnderscoreShort"/>).
    /// </summary>
    public void CheckUnknownKeys(IEnumerable<string> known)
    {
        var exact = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        var prefixes = new List<string>();
        foreach (var k in known)
        {
            if (k.EndsWith(":*", StringComparison.Ordinal))
            {
                prefixes.Add(k[..^1]);
                exact.Add(k[..^2]);
            }
            else
            {
                exact.Add(k);
            }
        }
        foreach (var layer in _layers)
        {
            if (layer.Source == SettingsLayer.Environment)
            {
                CheckVariablesOneUnderscoreShort(layer, exact, prefixes);
            }
            // Each key before the keys in it, in the order AsEnumerable gives them, but not below a key whose keys need no look:
            // a list's or a map's entries (any key is accepted), an unknown key's (it is said once, of the key) or a value's (a
            // list or an object written where one value goes, said once, of the key). AsEnumerable went through every key, and
            // asked the configuration for each one's children, which it finds by going through every key: a file of 40,000
            // routes took ten seconds to check or start, 100,000 two minutes.
            var sections = new Stack<IConfigurationSection>(layer.Configuration.GetChildren());
            while (sections.TryPop(out var section))
            {
                var path = section.Path;
                if (prefixes.Any(p => (path + ":").StartsWith(p, StringComparison.OrdinalIgnoreCase)))
                {
                    continue;
                }
                if (exact.TryGetValue(path, out var spelled))
                {
                    if (section.GetChildren().Any())
                    {
                        // Given a list or an object ("key": ["a"]). Said of the key, rather than "relay.key.0: unknown setting"
                        // (a typed reader then says nothing more of it).
                        const string NotOne = "expected one value, not a list or an object";
                        if (layer.Source == SettingsLayer.Environment)
                        {
                            // Given by variables below the key's own (PASSAGE__RELAY__IDLETIMEOUT__0), which are named: the
                            // key's own variable, which the source of an error names otherwise, may be set nowhere.
                            AddMessage($"{Display(spelled)}: {NotOne} (from {string.Join(", ", layer.VariablesSetting(spelled))})");
                        }
                        else
                        {
                            AddError(spelled, NotOne, layer);
                        }
                    }
                    continue;
                }
                if (!exact.Any(e => e.StartsWith(path + ":", StringComparison.OrdinalIgnoreCase)))
                {
                    if (layer.Source == SettingsLayer.Environment)
                    {
                        // The key as the configuration holds it (PASSAGE__Relay__Colour is "Relay:Colour", and "Relay:Colour" may
                        // come from several variables) is spelled nowhere: each variable is named, as the environment spells it.
                        _errors.AddRange(layer.VariablesSetting(path).DefaultIfEmpty(VariableOf(path)).Select(v => $"{v}: unknown setting"));
                    }
                    else
                    {
                        AddError(path, "unknown setting", layer);
                    }
                    continue;
                }
                if (section.Value is { Length: > 0 } value)
                {
                    // From the environment, the section as the readers spell it ("log", not PASSAGE__LOG's "LOG", which no
                    // file or variable holds), as errors about other known keys name them; the variable is named after it.
                    var name = layer.Source == SettingsLayer.Environment
                        && exact.FirstOrDefault(e => e.StartsWith(path + ":", StringComparison.OrdinalIgnoreCase)) is { } inside
                        ? inside[..path.Length] : path;
                    AddError(name, $"expected a section, an object of settings, not the single value '{value}'", layer);
                }
                foreach (var child in section.GetChildren())
                {
                    sections.Push(child);
                }
            }
        }
    }

    /// <summary>
    /// Reports each variable of <paramref name="layer"/> that is one underscore short of <see cref="EnvironmentPrefix"/> and
    /// reads as a setting of a section of the <paramref name="exact"/> keys: one written in the configuration's syntax,
    /// sections apart by <c>__</c> (<c>PASSAGE_RELAY__MAXTUNNELS</c>), or, apart by single underscores, one naming a known
    /// key (<c>PASSAGE_RELAY_IDLETIMEOUT</c>, or a list entry's, an index right below one of <paramref name="prefixes"/>:
    /// <c>PASSAGE_RELAY_ALLOW_0</c>). Each is named with the variable probably meant, in ordinal order.
    /// </summary>
    /// <remarks>
    /// The configuration reads only the variables that begin with the prefix, so such a one was passed over without a
    /// word, and the operator believed the setting given: a limit, a deny rule. It is an error, as an unknown key is.
    /// Other programs' variables may begin as well (<c>PASSAGE_HOME</c>, a script's <c>PASSAGE_RELAY</c> holding a relay's
    /// address): one that names no section of these settings, or only a section, is none of Passage's, and left alone. So
    /// are the variables a container platform derives from a service's name, which begin with a list's or a map's key where
    /// the service is named after it (Kubernetes sets <c>PASSAGE_CLIENT_HTTP_PORT=tcp://10.0.0.1:8080</c> and
    /// <c>PASSAGE_CLIENT_HTTP_SERVICE_HOST</c> in every pod beside a service <c>passage-client-http</c>): below such a key only
    /// an index, which no such variable ends in, is read as an entry; a map entry with single underscores is not caught.
    /// </remarks>
    private void CheckVariablesOneUnderscoreShort(SettingsLayer layer, HashSet<string> exact, List<string> prefixes)
    {
        var shortPrefix = EnvironmentPrefix[..^1];
        var sections = exact.Select(k => k.Split(':')[0]).ToHashSet(StringComparer.OrdinalIgnoreCase);
        foreach (var name in layer.VariableNames.Order(StringComparer.Ordinal))
        {
            if (!name.StartsWith(shortPrefix, StringComparison.OrdinalIgnoreCase) || name.StartsWith(EnvironmentPrefix, StringComparison.OrdinalIgnoreCase))
            {
                continue;
            }
            var rest = name[shortPrefix.Length..];
            var syntax = rest.Contains("__", StringComparison.Ordinal);
            var parts = syntax ? rest.Split("__") : rest.Split('_');
            var key = string.Join(':', parts);
            if (sections.Contains(parts[0])
                && (syntax || exact.Contains(key) || (IsIndex(parts[^1]) && prefixes.Any(p => p.Equals(key[..^parts[^1].Length], StringComparison.OrdinalIgnoreCase)))))
            {
                _errors.Add($"{name}: not read: a setting's variable begins with {EnvironmentPrefix}, two underscores (meant {EnvironmentPrefix}{string.Join("__", parts)}?)");
            }
        }
    }

    /// <summary>The dotted form of a configuration key, as written in the JSON file.</summary>
    public static string Display(string key) => key.Replace(':', '.');

    private delegate bool Parser<T>(string text, out T value);

    private T Get<T>(string key, T fallback, string expected, Parser<T> parse)
    {
        if (Find(key) is not { } hit)
        {
            return fallback;
        }
        var text = hit.Configuration[key];
        if (text is null)
        {
            if (!_errors.Any(e => e.StartsWith(Display(key) + ":", StringComparison.OrdinalIgnoreCase)))
            {
                // Not said yet by CheckUnknownKeys (a reader that does not check them).
                AddError(key, $"expected {expected}, not an object or list", hit);
            }
            return fallback;
        }
        if (!parse(text, out var value))
        {
            AddError(key, $"'{text}' is not {expected}", hit);
            return fallback;
        }
        return value;
    }

    /// <summary>The layers that set <paramref name="key"/> (a scalar, a list or a map), lowest precedence first, whichever wins.</summary>
    public IEnumerable<SettingsLayer> LayersSetting(string key) => _layers.Where(layer => Sets(layer, key));

    private static bool Sets(SettingsLayer layer, string key)
    {
        var section = layer.Configuration.GetSection(key);
        return section.Value is not null || section.GetChildren().Any();
    }

    private SettingsLayer? Find(string key)
    {
        for (var i = _layers.Count - 1; i >= 0; i--)
        {
            if (Sets(_layers[i], key))
            {
                return _layers[i];
            }
        }
        return null;
    }
}
