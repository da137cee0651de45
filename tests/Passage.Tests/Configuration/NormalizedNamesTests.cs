using Microsoft.Extensions.Configuration;
using Passage.Configuration;
using Passage.Relay;

namespace Passage.Tests.Configuration;

/// <summary>
/// Map entries whose names read as one once normalized (case, a trailing dot): both were taken, one dropped without a word,
/// and the effective settings printed a route's pattern twice, which does not read back. Refused, naming both.
/// </summary>
public sealed class NormalizedNamesTests
{
    private static (RelayOptions Options, IReadOnlyList<string> Errors) Read(string json)
    {
        var reader = new SettingsReader([new SettingsLayer("relay.json", JsonSettingsFile.Read(System.Text.Encoding.UTF8.GetBytes(json)))]);
        return (RelaySettings.Read(reader), reader.Errors);
    }

    [Fact]
    public void Two_routes_of_one_pattern_are_refused()
    {
        var (_, errors) = Read("""{ "relay": { "passthrough": ["127.0.0.1:0"], "routes": { "a.example": "b.example:443", "A.EXAMPLE.": "c.example:443", "*.Example": ":443", "*.example.": ":8443" } } }""");

        Assert.Equal(2, errors.Count);
        Assert.Contains("relay.routes.A.EXAMPLE.: the same pattern as relay.routes.a.example (read ignoring case and a trailing dot); give it once (from relay.json)", errors);
        Assert.Contains(errors, e => e.StartsWith("relay.routes.*.example.: the same pattern as relay.routes.*.Example ", StringComparison.Ordinal));
    }

    [Fact]
    public void Two_map_entries_of_one_name_are_refused()
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var (_, errors) = Read($$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": "{{directory.File("relay.pem")}}", "map": { "a.example": "192.0.2.1", "A.example.": "192.0.2.2" } } }""");

        Assert.Equal("relay.map.A.example.: the same name as relay.map.a.example (read ignoring case and a trailing dot); give it once (from relay.json)", Assert.Single(errors));
    }
}
