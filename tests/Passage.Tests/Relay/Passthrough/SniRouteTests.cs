using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>Route patterns as an operator writes them.</summary>
public sealed class SniRouteTests
{
    [Theory]
    [InlineData("API.Example.org", "api.example.org")]
    [InlineData("api.example.org.", "api.example.org")]
    [InlineData("*.example.org.", "*.example.org")]
    [InlineData("*", "*")]
    [InlineData("*.", "*")]
    public void A_pattern_is_kept_lower_case_without_its_final_dot(string pattern, string expected)
    {
        Assert.True(SniRoute.TryParse(pattern, ":443", out var route, out var error), error);
        Assert.Equal(expected, route.Pattern);
    }

    /// <summary>
    /// Only one final dot is a name's: more is a typo, and must not turn "*.." into the catch-all that dials whatever
    /// name a client sends, nor "a.test.." into a.test. A name is ASCII (RFC 5890 A-labels), whatever its lower case is.
    /// </summary>
    [Theory]
    [InlineData("*..")]
    [InlineData("*...")]
    [InlineData("api.example.org..")]
    [InlineData("*.example.org..")]
    // The Kelvin sign, which the invariant culture lowers to an ASCII 'k': "ka.test" is not what was written.
    [InlineData("\u212Aa.test")]
    [InlineData("*.\u212Aa.test")]
    public void More_than_one_final_dot_or_a_letter_outside_ascii_is_not_a_pattern(string pattern)
    {
        Assert.False(SniRoute.TryParse(pattern, ":443", out var route, out var error), route?.Pattern);
        Assert.Equal($"'{pattern}' is not a host name, '*.' wildcard or '*'", error);
    }

    /// <summary>
    /// The table picks an exact name first, then the longest wildcard whose suffix the name ends with after at least one
    /// label of its own, then the catch-all; a later duplicate replaces an earlier one. Wildcards are found by the name's
    /// own suffixes rather than by walking them all, which made a table of 50,000 take seconds to build.
    /// </summary>
    [Theory]
    [InlineData("api.example.org", "exact:1")]
    [InlineData("www.example.org", "example:2")]
    [InlineData("a.b.example.org", "example:2")]
    [InlineData("x.deep.example.org", "deep:3")]
    [InlineData("a.x.deep.example.org", "deep:3")]
    [InlineData("example.org", "any:4")]
    [InlineData("deep.example.org", "example:2")]
    [InlineData("org", "any:4")]
    [InlineData("", "any:4")]
    [InlineData("x", "any:4")]
    [InlineData(".example.org", "any:4")]
    [InlineData("example.org.example.net", "any:4")]
    public void A_name_takes_its_exact_route_then_its_longest_wildcard_then_the_catch_all(string name, string expected)
    {
        var table = new SniRouteTable([Route("api.example.org", "exact:1"), Route("*.example.org", "old:9"), Route("*.deep.example.org", "deep:3"),
            Route("*.example.org", "example:2"), Route("*", "any:4")]);
        Assert.Equal(4, table.Count);
        var route = table.Match(name);
        Assert.Equal(expected, $"{route!.Upstream}:{route.Port}");
    }

    [Fact]
    public void Without_a_catch_all_a_name_no_route_takes_has_none()
    {
        var table = new SniRouteTable([Route("*.example.org", "example:2")]);
        Assert.Null(table.Match("example.org"));
        Assert.Null(table.Match("x.example.net"));
        Assert.NotNull(table.Match("x.example.org"));
    }

    private static SniRoute Route(string pattern, string upstream)
    {
        Assert.True(SniRoute.TryParse(pattern, upstream, out var route, out var error), error);
        return route;
    }
}
