using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Passage.Cli.Commands;
using Passage.Client;
using Passage.Configuration;
using Passage.Relay;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Cli;

/// <summary>
/// The README's settings tables and flags held to the code: every key a table names is one the code reads, every key the
/// code reads is in a table, each stated default is what <c>passage config check</c> prints for a file that sets
/// only what is required, each flag is the one that sets its key, and every flag, section and file the README names exists. Tables
/// drift as the code changes; these tests say where.
/// </summary>
public sealed partial class ReadmeTruthTests
{
    /// <summary>
    /// Defaults that name no value but who decides when the setting is left unset: the setting is then not set, and
    /// config check prints it absent or empty.
    /// </summary>
    private static readonly HashSet<string> UnsetDefaults = new(StringComparer.Ordinal) { "none", "the kernel's", "resolv.conf's" };

    /// <summary>
    /// Documented defaults that config check prints as what they resolve to, each with the reason. <c>auto</c> is HTTP/2
    /// ("`auto` (HTTP/2)" in the table), and the effective settings say which protocol the tunnel speaks.
    /// </summary>
    private static readonly Dictionary<(string Key, string Documented), string> Resolved = new()
    {
        [("transport.protocol", "auto")] = "h2",
    };

    /// <summary>
    /// Flags whose help states a default that depends on where the program runs, as the table's meaning says: the log
    /// format is systemd's under systemd's journal, else text (the table's default).
    /// </summary>
    private static readonly HashSet<string> HelpDefaultsOtherwise = new(StringComparer.Ordinal) { "--log-format" };

    /// <summary>Flags the README names that belong to other programs (curl, the bench script), not to passage.</summary>
    private static readonly HashSet<string> OtherProgramsFlags = new(StringComparer.Ordinal)
    {
        "--proxy-cacert", "--proxy-pinnedpubkey", "--proxy-user", "--proxy-http2", "--socks5-hostname", "--connect-to", // curl
        "--quick", // bench/run
    };

    /// <summary>The commands whose flags set settings, by role, each with the flag that sets each key (<c>relay:connectTimeout</c>).</summary>
    private static readonly Dictionary<string, (Command Command, IReadOnlyDictionary<string, string> Flags)> FlagCommands = new()
    {
        ["relay"] = (RelayCommand.Create(), RelayCommand.Flags(ParseEveryOption(RelayCommand.Create())).Values.Names),
        ["client"] = (ClientCommand.Create(), ClientCommand.Flags(ParseEveryOption(ClientCommand.Create())).Values.Names),
    };

    /// <summary>The effective settings of a file per role that sets only what is required, printed once for all tests.</summary>
    private static readonly Lazy<Task<Dictionary<string, Dictionary<string, JsonElement>>>> Printed = new(PrintDefaultsAsync);

    [Fact]
    public async Task The_settings_tables_match_the_code()
    {
        var rows = SettingsRows(Readme());
        // The parser found the three roles' tables (a heading renamed would otherwise leave nothing to check).
        Assert.True(rows.Count(r => r.Role == "relay") >= 30, $"{rows.Count(r => r.Role == "relay")} relay rows");
        Assert.True(rows.Count(r => r.Role == "client") >= 13, $"{rows.Count(r => r.Role == "client")} client rows");
        Assert.True(rows.Count(r => r.Role == "tunnel") >= 30, $"{rows.Count(r => r.Role == "tunnel")} tunnel rows");

        var problems = Problems(rows, await Printed.Value);
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    /// <summary>The check fails where the README drifts: a default changed, a flag renamed, a row left out, a key unknown.</summary>
    [Fact]
    public async Task A_drifted_table_is_named_by_its_key()
    {
        var readme = Readme();
        string Drift(string from, string to)
        {
            Assert.Contains(from, readme);
            return readme.Replace(from, to, StringComparison.Ordinal);
        }
        var printed = await Printed.Value;

        Assert.Matches(
            "^README.md line [0-9]+: relay.connectTimeout: documented default '11s', config check prints '10s'$",
            Assert.Single(Problems(SettingsRows(Drift("| `relay.connectTimeout` | `--connect-timeout` | 10s |", "| `relay.connectTimeout` | `--connect-timeout` | 11s |")), printed)));
        Assert.Contains(
            "transport.streamReceiveWindow: documented default '2 MiB', config check prints '4194304'",
            Assert.Single(Problems(SettingsRows(Drift("| `transport.streamReceiveWindow` | 4 MiB |", "| `transport.streamReceiveWindow` | 2 MiB |")), printed)));
        Assert.Contains(
            "client.idleTimeout: documented flag --idle-time, the code's --idle-timeout",
            Assert.Single(Problems(SettingsRows(Drift("| `client.idleTimeout` | `--idle-timeout` |", "| `client.idleTimeout` | `--idle-time` |")), printed)));
        var removed = Problems(SettingsRows(Drift("| `relay.dnsCacheSize` |", "| `relay.dnsCacheSlots` |")), printed);
        Assert.Contains(removed, p => p.Contains("relay.dnsCacheSlots: not a key the relay reads", StringComparison.Ordinal));
        Assert.Contains(removed, p => p.Contains("relay.dnsCacheSize: the relay reads it, and no table of its settings has it", StringComparison.Ordinal));
    }

    /// <summary>
    /// The default a flag's help states (<c>Default 10s</c>) is the one its key's table row states: <c>passage relay --help</c>
    /// said <c>--passthrough</c> defaults to 127.0.0.1:9443, where <c>passage relay</c> alone serves no pass-through.
    /// </summary>
    [Fact]
    public void The_defaults_the_help_states_are_the_tables()
    {
        var rows = SettingsRows(Readme());
        var problems = new List<string>();
        foreach (var (role, (command, flags)) in FlagCommands)
        {
            foreach (var option in command.Options)
            {
                // "Default: ..." is prose (what happens when it is not given), not a value to compare.
                if (HelpDefaultPattern().Match(option.Description ?? "") is not { Success: true } match
                    || HelpDefaultsOtherwise.Contains(option.Name))
                {
                    continue;
                }
                var key = SettingsReader.Display(flags.Single(f => f.Value == option.Name).Key);
                var documented = rows.FirstOrDefault(r => r.Role == role && r.Key == key)?.Default ?? "(no row)";
                var stated = match.Groups[1].Value;
                if (!SameValue(documented, stated))
                {
                    problems.Add($"passage {role} --help: {option.Name} says Default {stated}, the README's {key} {documented}");
                }
            }
        }
        Assert.True(problems.Count == 0, string.Join('\n', problems));
    }

    /// <summary>
    /// Every <c>--flag</c> the README names is a flag of some passage command (or of the other programs it shows, listed),
    /// and every flag of every command is in the README.
    /// </summary>
    [Fact]
    public void Every_flag_the_readme_names_exists_and_every_flag_is_named()
    {
        var readme = Readme();
        var commands = new[] { RelayCommand.Create(), ClientCommand.Create(), TunnelCommand.Create(), KeygenCommand.Create(), IdCommand.Create(), ConfigCommand.Create() };
        var flags = commands.SelectMany(AllOptions).Select(o => o.Name).Where(n => n.StartsWith("--", StringComparison.Ordinal) && n != "--help").ToHashSet();

        var named = FlagPattern().Matches(readme).Select(m => m.Value).ToHashSet();
        Assert.Empty(named.Where(f => !flags.Contains(f) && !OtherProgramsFlags.Contains(f)).Order());
        Assert.Empty(flags.Where(f => !named.Contains(f)).Order());
        Assert.Empty(OtherProgramsFlags.Where(f => !named.Contains(f)).Order());
    }

    /// <summary>The README's settings example is a relay's settings file that config check takes.</summary>
    [Fact]
    public async Task The_readme_settings_example_is_valid()
    {
        using var directory = new TemporaryDirectory();
        var examples = JsoncBlock().Matches(Readme()).Select(m => m.Groups[1].Value).ToList();
        var example = Assert.Single(examples);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", directory.Write("example.jsonc", example)]);
        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("api.example.org", json.RootElement.GetProperty("relay").GetProperty("routes").EnumerateObject().Single().Name);
    }

    /// <summary>
    /// Every link to a section (<c>](#logs-and-counters)</c>) finds its heading, and every file or folder of the
    /// repository the README names (<c>deploy/relay.json</c>, <c>bench/flows/run</c>) is there.
    /// </summary>
    [Fact]
    public void Every_section_and_file_the_readme_names_exists()
    {
        var readme = Readme();
        var root = RelayCommandTests.RepositoryRoot();
        // GitHub's anchors: the heading in lower case, spaces as hyphens, punctuation other than hyphens left out.
        var anchors = HeadingPattern().Matches(readme)
            .Select(m => new string([.. m.Groups[1].Value.ToLowerInvariant().Replace(' ', '-').Where(c => char.IsLetterOrDigit(c) || c is '-' or '_')]))
            .ToHashSet();
        var links = AnchorLinkPattern().Matches(readme).Select(m => m.Groups[1].Value).ToHashSet();
        Assert.NotEmpty(links);
        Assert.Empty(links.Where(l => !anchors.Contains(l)).Order());

        var paths = RepositoryPathPattern().Matches(readme).Select(m => m.Value).ToHashSet();
        Assert.Contains("deploy/relay.json", paths);
        Assert.Empty(paths.Where(p => !File.Exists(Path.Combine(root, p)) && !Directory.Exists(Path.Combine(root, p))).Order());
    }

    /// <summary>A row of a settings table: one key (a row naming two gives two), its flag, its default, where it stands.</summary>
    private sealed record Row(string Role, string Key, string? Flag, string? Default, bool HasFlagColumn, int Line);

    /// <summary>
    /// The rows (<c>| `key` |</c>) of every table with a <c>default</c> column: a row naming several keys gives one row
    /// each, its flags and defaults split at commas when there is one for each key. The role is the first key's section's.
    /// </summary>
    private static List<Row> SettingsRows(string readme)
    {
        var lines = readme.ReplaceLineEndings("\n").Split('\n');
        var rows = new List<Row>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith('|') || (i > 0 && lines[i - 1].StartsWith('|')))
            {
                continue;
            }
            var header = Cells(lines[i]);
            var defaultColumn = header.FindIndex(c => c == "default");
            if (defaultColumn < 0)
            {
                continue;
            }
            var flagColumn = header.FindIndex(c => c == "flag");
            string? role = null;
            for (var j = i + 2; j < lines.Length && lines[j].StartsWith('|'); j++)
            {
                if (!lines[j].StartsWith("| `", StringComparison.Ordinal))
                {
                    continue;
                }
                var cells = Cells(lines[j]);
                var keys = Ticked(cells[0]);
                role ??= keys[0].Split('.')[0] switch { "relay" => "relay", "client" => "client", _ => "tunnel" };
                var flags = flagColumn < 0 ? [] : Ticked(cells[flagColumn]).Select(f => f.Split(' ')[0]).ToList();
                var defaults = cells[defaultColumn].Split(',', StringSplitOptions.TrimEntries).Select(d => d.Trim('`')).ToList();
                for (var k = 0; k < keys.Count; k++)
                {
                    rows.Add(new Row(
                        role,
                        keys[k],
                        flags.Count == keys.Count ? flags[k] : flags.Count == 1 ? flags[0] : null,
                        defaults.Count == keys.Count ? defaults[k] : defaults.Count == 1 ? defaults[0] : $"(unreadable: {cells[defaultColumn]})",
                        flagColumn >= 0,
                        j + 1));
                }
            }
        }
        return rows;

        static List<string> Cells(string line) => [.. line.Trim().Trim('|').Split('|').Select(c => c.Trim())];
        static List<string> Ticked(string cell) => [.. TickedPattern().Matches(cell).Select(m => m.Groups[1].Value)];
    }

    /// <summary>Where the rows and the code disagree, each problem naming its key and README line; none when they agree.</summary>
    private static List<string> Problems(List<Row> rows, Dictionary<string, Dictionary<string, JsonElement>> printed)
    {
        var problems = new List<string>();
        var known = new Dictionary<string, IReadOnlyList<string>>
        {
            ["relay"] = RelaySettings.KnownKeys,
            ["client"] = ClientSettings.KnownKeys,
            ["tunnel"] = TunnelSettings.KnownKeys,
        };
        foreach (var (role, keys) in known)
        {
            var readable = keys.Select(k => SettingsReader.Display(k.EndsWith(":*", StringComparison.Ordinal) ? k[..^2] : k)).ToHashSet();
            var documented = rows.Where(r => r.Role == role).ToList();
            foreach (var row in documented.Where(r => !readable.Contains(r.Key)))
            {
                problems.Add($"README.md line {row.Line}: {row.Key}: not a key the {role} reads");
            }
            foreach (var key in readable.Where(k => !documented.Any(r => r.Key == k)).Order())
            {
                problems.Add($"{key}: the {role} reads it, and no table of its settings has it");
            }
            foreach (var key in printed[role].Keys.Where(k => !documented.Any(r => r.Key == k)).Order())
            {
                problems.Add($"{key}: config check prints it for a {role}, and no table of its settings has it");
            }
            foreach (var row in documented.Where(r => readable.Contains(r.Key)))
            {
                if (DefaultProblem(row, printed[role].TryGetValue(row.Key, out var value) ? value : null) is { } problem)
                {
                    problems.Add($"README.md line {row.Line}: {row.Key}: {problem}");
                }
                if (row.HasFlagColumn && FlagCommands.TryGetValue(role, out var command))
                {
                    var flag = command.Flags.TryGetValue(row.Key.Replace('.', ':'), out var name) ? name : null;
                    if (flag != row.Flag)
                    {
                        problems.Add($"README.md line {row.Line}: {row.Key}: documented flag {row.Flag ?? "none"}, the code's {flag ?? "none"}");
                    }
                }
            }
        }
        return problems;
    }

    /// <summary>What is wrong with <paramref name="row"/>'s default against the printed value; null when it holds or none is stated.</summary>
    private static string? DefaultProblem(Row row, JsonElement? printed)
    {
        var documented = row.Default;
        if (documented is null or "" || documented.StartsWith("required", StringComparison.Ordinal))
        {
            return null;
        }
        var empty = printed is null
            || printed.Value.ValueKind == JsonValueKind.Null
            || (printed.Value.ValueKind == JsonValueKind.Array && printed.Value.GetArrayLength() == 0)
            || (printed.Value.ValueKind == JsonValueKind.Object && !printed.Value.EnumerateObject().Any());
        if (UnsetDefaults.Contains(documented))
        {
            return empty ? null : $"documented default '{documented}' (unset), config check prints '{printed}'";
        }
        if (empty)
        {
            return $"documented default '{documented}', config check prints none";
        }
        var value = printed!.Value;
        if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() == 1)
        {
            value = value[0];
        }
        var text = value.ValueKind == JsonValueKind.String ? value.GetString()! : value.GetRawText();
        var holds = value.ValueKind switch
        {
            JsonValueKind.Number => Size(documented) is { } size && size == value.GetDecimal(),
            _ => SameValue(Resolved.TryGetValue((row.Key, documented), out var resolved) ? resolved : documented, text),
        };
        return holds ? null : $"documented default '{documented}', config check prints '{text}'";
    }

    /// <summary>Whether two texts of a setting's value say the same: durations by their length (<c>60s</c> is <c>1m</c>), else exactly.</summary>
    private static bool SameValue(string documented, string stated) =>
        DurationPattern().IsMatch(documented) && DurationPattern().IsMatch(stated)
            ? Duration.TryParse(documented, out var a) && Duration.TryParse(stated, out var b) && a == b
            : documented == stated;

    /// <summary>A number as the tables write it, <c>8192</c>, <c>0.5</c> or <c>4 MiB</c>; null for anything else.</summary>
    private static decimal? Size(string text)
    {
        var match = SizePattern().Match(text);
        if (!match.Success)
        {
            return null;
        }
        var number = decimal.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        return number * match.Groups[2].Value switch { "KiB" => 1024, "MiB" => 1024 * 1024, "GiB" => 1024 * 1024 * 1024, _ => 1 };
    }

    /// <summary>
    /// Runs <c>passage config check</c> once per role on a file that sets only what the role requires and returns what it
    /// prints, by key (<c>relay.connectTimeout</c>); the process inherits none of the machine's Passage or journal variables
    /// (<see cref="MachineEnvironment"/>), so that what is printed is the code's defaults alone.
    /// </summary>
    private static async Task<Dictionary<string, Dictionary<string, JsonElement>>> PrintDefaultsAsync()
    {
        using var directory = new TemporaryDirectory();
        var peer = Passage.Identity.NodeIdentity.Create().NodeId;
        var files = new Dictionary<string, string>
        {
            ["relay"] = directory.Write("relay.json", """{ "relay": {} }"""),
            ["client"] = directory.Write("client.json", $$"""{ "client": { "relays": ["{{peer}}@127.0.0.1:8443"] } }"""),
            ["tunnel"] = directory.Write("tunnel.json", $$"""
                { "general": { "mode": "client", "peer": "{{peer}}", "connectAddress": "127.0.0.1:20010" },
                  "tls": { "key": "{{directory.File("tunnel.pem")}}" } }
                """),
        };
        var printed = new Dictionary<string, Dictionary<string, JsonElement>>();
        foreach (var (role, file) in files)
        {
            var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);
            Assert.True(exit == 0, $"{role}: {stderr}");
            using var json = JsonDocument.Parse(stdout, new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip });
            printed[role] = json.RootElement.EnumerateObject()
                .SelectMany(section => section.Value.EnumerateObject().Select(setting => (Key: $"{section.Name}.{setting.Name}", setting.Value)))
                .ToDictionary(s => s.Key, s => s.Value.Clone());
        }
        return printed;
    }

    /// <summary>
    /// <paramref name="command"/> parsed with every one of its options given (a value that suits a list, a scalar and a
    /// pair alike), so that its flag reader names the key each sets.
    /// </summary>
    private static ParseResult ParseEveryOption(Command command) =>
        command.Parse([.. command.Options.SelectMany(o => o is Option<bool> ? new[] { o.Name } : [o.Name, "a:b=c"])]);

    private static IEnumerable<Option> AllOptions(Command command) => command.Options.Concat(command.Subcommands.SelectMany(AllOptions));

    private static string Readme() => File.ReadAllText(Path.Combine(RelayCommandTests.RepositoryRoot(), "README.md"));

    [GeneratedRegex("`([^`]+)`")]
    private static partial Regex TickedPattern();

    [GeneratedRegex(@"(?<![\w-])--[a-z][a-z0-9-]*[a-z0-9]")]
    private static partial Regex FlagPattern();

    [GeneratedRegex(@"^[0-9]+(ms|s|m|h|d)$")]
    private static partial Regex DurationPattern();

    [GeneratedRegex(@"^([0-9]+(?:\.[0-9]+)?)(?: (KiB|MiB|GiB))?$")]
    private static partial Regex SizePattern();

    [GeneratedRegex(@"```jsonc\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsoncBlock();

    [GeneratedRegex(@"\bDefault ([^ ]+?)(?=[.,;)]? |[.,;)]?$)")]
    private static partial Regex HelpDefaultPattern();

    [GeneratedRegex(@"^#+ (.+)$", RegexOptions.Multiline)]
    private static partial Regex HeadingPattern();

    [GeneratedRegex(@"\]\(#([^)]+)\)")]
    private static partial Regex AnchorLinkPattern();

    [GeneratedRegex(@"(?<![\w/.-])(?:deploy|bench|src|tests|\.ci)/[\w@./-]*\w")]
    private static partial Regex RepositoryPathPattern();
}
