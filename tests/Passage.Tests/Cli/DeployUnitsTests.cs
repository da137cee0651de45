using System.Text.Json;

namespace Passage.Tests.Cli;

/// <summary>The systemd units in deploy/, read as systemd reads their [Service] settings, against the example settings they run.</summary>
public sealed class DeployUnitsTests
{
    /// <summary>Two instances of a template unit, as an operator runs them (the units' own comments enable <c>passage-tunnel@api</c>).</summary>
    private static readonly string[] Instances = ["api", "db"];

    /// <summary>
    /// With <c>DynamicUser=yes</c> each unit (each instance of a template) runs as a user of its own, and systemd hands it its
    /// <c>StateDirectory=</c> by changing the owner of everything in it, recursively, to that user at each start. The relay and
    /// every tunnel instance shared /var/lib/passage: whichever started last owned every identity in it, so one tunnel's
    /// process could read the relay's private key and the other tunnels'.
    /// </summary>
    [Fact]
    public void Each_unit_with_a_dynamic_user_has_a_state_directory_of_its_own()
    {
        var owners = new Dictionary<string, string>();
        foreach (var (unit, settings) in Units())
        {
            if (!settings.TryGetValue("DynamicUser", out var dynamic) || dynamic != "yes")
            {
                continue;
            }
            foreach (var instance in unit.Contains("@.", StringComparison.Ordinal) ? Instances : [""])
            {
                var name = unit.Replace("@.", $"@{instance}.", StringComparison.Ordinal);
                foreach (var directory in StateDirectories(settings, instance))
                {
                    Assert.False(owners.TryGetValue(directory, out var other), $"{name} and {other} share StateDirectory={directory}");
                    owners[directory] = name;
                }
            }
        }
        Assert.NotEmpty(owners);
    }

    /// <summary>The identity each example names is written where its unit may write: in that unit's state directory (ProtectSystem=strict makes the rest read-only).</summary>
    [Theory]
    [InlineData("connect-relay.json", "passage-relay.service", "relay")]
    [InlineData("tunnel-client.json", "passage-tunnel@.service", "tls")]
    [InlineData("tunnel-server.json", "passage-tunnel@.service", "tls")]
    public void The_key_an_example_names_is_in_its_units_state_directory(string example, string unit, string section)
    {
        var options = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true };
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(Deploy, example)), options);
        var key = json.RootElement.GetProperty(section).GetProperty("key").GetString()!;
        var directories = StateDirectories(Units()[unit], Instances[0]);
        Assert.True(directories.Any(d => key.StartsWith($"/var/lib/{d}/", StringComparison.Ordinal)),
            $"{example}: {key} is in none of {unit}'s state directories ({string.Join(", ", directories.Select(d => "/var/lib/" + d))})");
    }

    /// <summary>
    /// Each unit bounds its capabilities to those it is given (the relay: binding ports below 1024; the others: none), so
    /// that nothing the process runs can gain another.
    /// </summary>
    [Fact]
    public void Each_unit_keeps_no_capability_beyond_those_it_is_given()
    {
        foreach (var (unit, settings) in Units())
        {
            Assert.True(settings.TryGetValue("CapabilityBoundingSet", out var bounding), $"{unit} sets no CapabilityBoundingSet");
            var given = settings.TryGetValue("AmbientCapabilities", out var ambient) ? ambient : "";
            Assert.True(Words(given).SetEquals(Words(bounding)), $"{unit}: CapabilityBoundingSet={bounding} but AmbientCapabilities={given}");
        }
    }

    /// <summary>
    /// The relay reads this host's own addresses (to refuse a tunnel back to itself) through a netlink socket: a unit that
    /// restricts address families without AF_NETLINK leaves it unable to, and it then warns and reads again at each dial.
    /// </summary>
    [Fact]
    public void The_relays_unit_lets_it_read_its_own_addresses()
    {
        var relay = Units()["passage-relay.service"];
        if (relay.TryGetValue("RestrictAddressFamilies", out var families))
        {
            Assert.Contains("AF_NETLINK", Words(families));
        }
    }

    private static HashSet<string> Words(string value) => [.. value.Split(' ', StringSplitOptions.RemoveEmptyEntries)];

    private static string Deploy => Path.Combine(RelayCommandTests.RepositoryRoot(), "deploy");

    /// <summary>Each unit file's [Service] settings, by name (a setting given twice: its last value).</summary>
    private static Dictionary<string, Dictionary<string, string>> Units()
    {
        var units = new Dictionary<string, Dictionary<string, string>>();
        foreach (var file in Directory.GetFiles(Deploy, "*.service"))
        {
            var settings = new Dictionary<string, string>();
            var section = "";
            foreach (var raw in File.ReadAllLines(file))
            {
                var line = raw.Trim();
                if (line.StartsWith('[') && line.EndsWith(']'))
                {
                    section = line;
                }
                else if (section == "[Service]" && !line.StartsWith('#') && line.IndexOf('=', StringComparison.Ordinal) is > 0 and var at)
                {
                    settings[line[..at].Trim()] = line[(at + 1)..].Trim();
                }
            }
            units[Path.GetFileName(file)] = settings;
        }
        return units;
    }

    /// <summary>The unit's state directories (below /var/lib), its instance name put in for <c>%i</c>.</summary>
    private static string[] StateDirectories(Dictionary<string, string> settings, string instance) =>
        settings.TryGetValue("StateDirectory", out var value)
            ? value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(d => d.Replace("%i", instance, StringComparison.Ordinal)).ToArray()
            : [];
}
