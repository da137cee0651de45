using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

public sealed class DestinationRulesTests
{
    private static DestinationRules Rules(string[] allow, string[]? deny = null)
    {
        var errors = new List<string>();
        DestinationRules rules = DestinationRules.Parse(allow, deny ?? [], "relay.allow", "relay.deny", errors);
        Assert.Empty(errors);
        return rules;
    }

    private static RuleStatus Status(string pattern, string host, int port) =>
        Rules([pattern]).Check(host, port).Status;

    private static List<string> Errors(string[] allow, string[] deny)
    {
        var errors = new List<string>();
        DestinationRules.Parse(allow, deny, "relay.allow", "relay.deny", errors);
        return errors;
    }

    [Theory]
    [InlineData("api.example.org", true)]
    [InlineData("API.Example.ORG", true)]
    [InlineData("api.example.org.", true)]
    [InlineData("example.org", false)]
    [InlineData("x.api.example.org", false)]
    [InlineData("api.example.org.attacker.net", false)]
    public void Exact_name_ignores_case_and_final_dot(string host, bool allowed) =>
        Assert.Equal(allowed ? RuleStatus.Allowed : RuleStatus.NotAllowed, Status("api.example.org:443", host, 443));

    [Fact]
    public void Exact_pattern_with_capitals_and_final_dot_is_normalized() =>
        Assert.Equal(RuleStatus.Allowed, Status("API.Example.Org.:443", "api.example.org", 443));

    [Theory]
    [InlineData("a.example.org", true)]
    [InlineData("a.b.example.org", true)]
    [InlineData("A.EXAMPLE.ORG.", true)]
    [InlineData("example.org", false)]
    [InlineData("badexample.org", false)]
    [InlineData("example.org.evil.net", false)]
    public void Wildcard_matches_names_below_the_suffix_not_the_suffix(string host, bool allowed) =>
        Assert.Equal(allowed ? RuleStatus.Allowed : RuleStatus.NotAllowed, Status("*.example.org:443", host, 443));

    [Theory]
    [InlineData("example.org")]
    [InlineData("localhost")]
    [InlineData("192.0.2.1")]
    [InlineData("[2001:db8::1]")]
    [InlineData("2001:db8::1")]
    public void Star_matches_any_host(string host) =>
        Assert.Equal(RuleStatus.Allowed, Status("*:443", host, 443));

    [Theory]
    [InlineData("api.example.org", true)]
    [InlineData("API.EXAMPLE.ORG.", true)]
    [InlineData("evilapi.example.org.attacker.net", false)]
    [InlineData("api.example.org.attacker.net", false)]
    [InlineData("xapi.example.org", false)]
    [InlineData("api-example.org", false)]
    public void Regex_is_anchored_on_the_whole_name(string host, bool allowed) =>
        Assert.Equal(allowed ? RuleStatus.Allowed : RuleStatus.NotAllowed, Status(@"~api\.example\.org:443", host, 443));

    [Fact]
    public void Regex_does_not_match_part_of_a_name()
    {
        Assert.Equal(RuleStatus.NotAllowed, Status("~example:443", "example.org", 443));
        Assert.Equal(RuleStatus.NotAllowed, Status("~example:443", "www.example", 443));
        Assert.Equal(RuleStatus.Allowed, Status("~example:443", "example", 443));
    }

    [Fact]
    public void Regex_alternation_stays_inside_the_anchors()
    {
        // Unwrapped, "^a|b$" would match any name starting with a or ending with b.
        DestinationRules rules = Rules(["~a|b:443"]);
        Assert.True(rules.Check("a", 443).IsAllowed);
        Assert.True(rules.Check("b", 443).IsAllowed);
        Assert.False(rules.Check("ab", 443).IsAllowed);
        Assert.False(rules.Check("a.example.org", 443).IsAllowed);
        Assert.False(rules.Check("example.b", 443).IsAllowed);
    }

    [Fact]
    public void Regex_is_matched_on_the_name_never_the_port()
    {
        // A pattern that would match "host:443" as a string must not match the host.
        DestinationRules rules = Rules([@"~.*\.example\.org:.*:443"]);
        Assert.False(rules.Check("a.example.org", 443).IsAllowed);
    }

    [Fact]
    public void Regex_may_contain_colons_and_splits_at_the_last()
    {
        DestinationRule.TryParse("~(?i:api|www)\\.example\\.org:443", out DestinationRule? rule, out string? error);
        Assert.Null(error);
        Assert.True(rule!.Matches("www.example.org", 443));
        Assert.False(rule.Matches("www.example.org", 80));
    }

    [Theory]
    [InlineData(@"~[a-z]+\.example\.org:443", "192.0.2.1")]
    [InlineData(@"~[0-9.]+:443", "192.0.2.1")]
    [InlineData("~.*:443", "192.0.2.1")]
    [InlineData("~.*:443", "[2001:db8::1]")]
    public void Address_literals_never_match_name_patterns(string pattern, string host) =>
        Assert.Equal(RuleStatus.NotAllowed, Status(pattern, host, 443));

    [Fact]
    public async Task Hostile_regex_and_name_finish()
    {
        // With backtracking, (a+)+$ over "aaaa...!" takes exponential time: years, not the test's patience.
        DestinationRules rules = Rules([@"~(a+)+b:443", @"~(a|aa)*c:443", @"~(.*a){20}:443"]);
        string name = new string('a', 60) + "." + new string('a', 60) + "." + new string('a', 60) + ".x";
        await Task.Run(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                Assert.Equal(RuleStatus.NotAllowed, rules.Check(name, 443).Status);
            }
        }).WaitAsync(Timeouts.Default);
    }

    [Theory]
    [InlineData("443", 443, true)]
    [InlineData("443", 444, false)]
    [InlineData("8000-8999", 7999, false)]
    [InlineData("8000-8999", 8000, true)]
    [InlineData("8000-8999", 8500, true)]
    [InlineData("8000-8999", 8999, true)]
    [InlineData("8000-8999", 9000, false)]
    [InlineData("80-80", 80, true)]
    [InlineData("*", 1, true)]
    [InlineData("*", 65535, true)]
    [InlineData("*", 0, false)]
    [InlineData("*", 65536, false)]
    [InlineData("1-65535", 65535, true)]
    public void Ports_numbers_ranges_and_star(string ports, int port, bool allowed) =>
        Assert.Equal(allowed ? RuleStatus.Allowed : RuleStatus.NotAllowed, Status("example.org:" + ports, "example.org", port));

    [Fact]
    public void Deny_wins_over_allow_and_names_its_pattern()
    {
        DestinationRules rules = Rules(["*:*"], ["*.internal.example.org:*", "example.org:22"]);
        Assert.Equal(new RuleVerdict(RuleStatus.Denied, "*.internal.example.org:*"), rules.Check("db.internal.example.org", 443));
        Assert.Equal(new RuleVerdict(RuleStatus.Denied, "example.org:22"), rules.Check("EXAMPLE.org.", 22));
        Assert.Equal(new RuleVerdict(RuleStatus.Allowed, "*:*"), rules.Check("example.org", 23));
    }

    [Fact]
    public void Default_allows_any_host_on_443_only()
    {
        Assert.Equal(new RuleVerdict(RuleStatus.Allowed, "*:443"), DestinationRules.Default.Check("example.org", 443));
        Assert.Equal(RuleStatus.Allowed, DestinationRules.Default.Check("192.0.2.1", 443).Status);
        Assert.Equal(RuleStatus.NotAllowed, DestinationRules.Default.Check("example.org", 80).Status);
        Assert.Equal(RuleStatus.NotAllowed, DestinationRules.Default.Check("example.org", 8443).Status);
        Assert.Empty(DestinationRules.Default.Allow);
        Assert.Equal("*:443", Assert.Single(DestinationRules.Default.EffectiveAllow).Text);
    }

    [Fact]
    public void Deny_rules_apply_on_top_of_the_default()
    {
        DestinationRules rules = Rules([], ["blocked.example:*"]);
        Assert.Equal(RuleStatus.Denied, rules.Check("blocked.example", 443).Status);
        Assert.Equal(RuleStatus.Allowed, rules.Check("open.example", 443).Status);
        Assert.Equal(RuleStatus.NotAllowed, rules.Check("open.example", 80).Status);
    }

    [Fact]
    public void Allow_rules_replace_the_default()
    {
        DestinationRules rules = Rules(["example.org:8443"]);
        Assert.Equal(RuleStatus.NotAllowed, rules.Check("other.example", 443).Status);
        Assert.Equal(RuleStatus.Allowed, rules.Check("example.org", 8443).Status);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f.1")]
    [InlineData("0x7f000001")]
    [InlineData("017700000001")]
    [InlineData("[::ffff:127.0.0.1]")]
    [InlineData("::ffff:127.0.0.1")]
    [InlineData("[::ffff:7f00:1]")]
    public void Every_literal_form_matches_an_ipv4_pattern(string host)
    {
        Assert.Equal(RuleStatus.Allowed, Status("127.0.0.1:443", host, 443));
        Assert.Equal(RuleStatus.Denied, Rules(["*:*"], ["127.0.0.1:*"]).Check(host, 443).Status);
    }

    [Fact]
    public void Mapped_ipv6_pattern_matches_the_ipv4_address() =>
        Assert.Equal(RuleStatus.Allowed, Status("[::ffff:127.0.0.1]:443", "127.0.0.1", 443));

    [Theory]
    [InlineData("[::1]", true)]
    [InlineData("::1", true)]
    [InlineData("[0:0:0:0:0:0:0:1]", true)]
    [InlineData("[::2]", false)]
    [InlineData("127.0.0.1", false)]
    public void Ipv6_pattern_in_brackets(string host, bool allowed) =>
        Assert.Equal(allowed ? RuleStatus.Allowed : RuleStatus.NotAllowed, Status("[::1]:443", host, 443));

    [Fact]
    public void Ipv6_zone_in_a_request_does_not_escape_a_deny_rule() =>
        Assert.Equal(RuleStatus.Denied, Rules(["*:*"], ["[fe80::1]:*"]).Check("fe80::1%1", 443).Status);

    [Fact]
    public void Address_pattern_does_not_match_other_addresses_or_names()
    {
        Assert.Equal(RuleStatus.NotAllowed, Status("192.0.2.1:443", "192.0.2.2", 443));
        Assert.Equal(RuleStatus.NotAllowed, Status("192.0.2.1:443", "192.0.2.1.example", 443));
    }

    [Theory]
    [InlineData("exa mple.org")]
    [InlineData("")]
    [InlineData("-bad.example")]
    [InlineData("example..org")]
    [InlineData("1.2.3.256")]
    [InlineData("example.org:443")]
    [InlineData("[::1")]
    [InlineData("example.123")]
    public void Invalid_host_is_a_distinct_verdict(string host) =>
        Assert.Equal(new RuleVerdict(RuleStatus.InvalidHost, null), Rules(["*:*"]).Check(host, 443));

    [Fact]
    public void NormalizeHost_gives_the_compared_form()
    {
        Assert.Equal("example.org", DestinationRules.NormalizeHost("Example.ORG."));
        Assert.Equal("127.0.0.1", DestinationRules.NormalizeHost("0x7f.1"));
        Assert.Equal("127.0.0.1", DestinationRules.NormalizeHost("[::ffff:127.0.0.1]"));
        Assert.Equal("2001:db8::1", DestinationRules.NormalizeHost("[2001:DB8:0::1]"));
        Assert.Null(DestinationRules.NormalizeHost("bad name"));
    }

    [Fact]
    public void Rule_Matches_accepts_normalized_and_raw_hosts()
    {
        Assert.True(DestinationRule.TryParse("127.0.0.1:443", out DestinationRule? rule, out _));
        Assert.True(rule.Matches("127.0.0.1", 443));
        Assert.True(rule.Matches("127.1", 443));
        Assert.False(rule.Matches("bad name", 443));
        Assert.Equal("127.0.0.1:443", rule.Text);
    }

    [Fact]
    public void Every_bad_entry_is_reported_at_once_naming_its_key()
    {
        List<string> errors = Errors(
            ["example.org:443", "example.org:0", "~(:443", "*.:443"],
            ["example.org", "[::1]", "1.2.3.4:8999-8000"]);

        Assert.Equal(6, errors.Count);
        Assert.StartsWith("relay.allow[1]: 'example.org:0': '0' is not a port", errors[0], StringComparison.Ordinal);
        Assert.StartsWith("relay.allow[2]: '~(' is not a valid regular expression: ", errors[1], StringComparison.Ordinal);
        Assert.StartsWith("relay.allow[3]: ", errors[2], StringComparison.Ordinal);
        Assert.Equal("relay.deny[0]: 'example.org' has no port (use example.org:443, example.org:*)", errors[3]);
        Assert.Equal("relay.deny[1]: '[::1]' has no port (use [::1]:443, [::1]:*)", errors[4]);
        Assert.StartsWith("relay.deny[2]: '1.2.3.4:8999-8000': the port range '8999-8000' is empty", errors[5], StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("")]
    [InlineData(":443")]
    [InlineData("example.org:")]
    [InlineData("example.org:65536")]
    [InlineData("example.org:-1")]
    [InlineData("example.org:+443")]
    [InlineData("example.org: 443")]
    [InlineData("example.org:80-")]
    [InlineData("example.org:80-90-100")]
    [InlineData("example.org:**")]
    [InlineData("exa mple.org:443")]
    [InlineData("*example.org:443")]
    [InlineData("*.*.example.org:443")]
    [InlineData("*.0.2.1:443")]
    [InlineData("::1:443")]
    [InlineData("[::1]443")]
    [InlineData("[example.org]:443")]
    [InlineData("[fe80::1%1]:443")]
    [InlineData("127.1:443")]
    [InlineData("010.0.0.1:443")]
    [InlineData("0x7f.0.0.1:443")]
    [InlineData("2130706433:443")]
    [InlineData("~:443")]
    [InlineData("~a)|(b:443")]
    [InlineData("~(?x)a#:443")]
    [InlineData(@"~(a)\1:443")]
    [InlineData("~(?=a)a:443")]
    [InlineData("~api.example.org")]
    public void Bad_patterns_are_errors(string pattern)
    {
        string error = Assert.Single(Errors([pattern], []));
        Assert.StartsWith("relay.allow[0]: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Backtracking_constructs_are_named_in_the_error()
    {
        string error = Assert.Single(Errors([@"~(a)\1:443"], []));
        Assert.Contains("without backtracking", error, StringComparison.Ordinal);
    }
}
