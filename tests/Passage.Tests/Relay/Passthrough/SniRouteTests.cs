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
}
