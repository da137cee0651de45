using System.Globalization;

namespace Passage.Relay.Destinations;

/// <summary>
/// Which destinations, by host name and port, a CONNECT relay may open: the <c>--allow</c> and
/// <c>--deny</c> patterns (see <see cref="DestinationRule"/> for their forms). Immutable and safe to
/// share between connections.
/// </summary>
/// <remarks>
/// <para>The order of checks for one request:</para>
/// <code>
/// host:port ──▶ Check (this class, on the name, before any lookup)
///                 │ invalid host ──▶ InvalidHost
///                 │ a deny rule matches ──▶ Denied(pattern)
///                 │ no allow rule matches ──▶ NotAllowed
///                 ▼ allowed
///               DestinationResolver.ResolveAsync ──▶ AddressPolicy.Check on every address
/// </code>
/// <para>Both apply: a name these rules allow is still refused when it resolves to a loopback, private
/// or metadata address that the <see cref="AddressPolicy"/> refuses, and an address the policy allows is
/// still refused when these rules do not allow its name. The rules see only what the client asked for,
/// never what DNS answered, so they cannot be steered by a DNS record.</para>
/// <para>Deny wins over allow. With no allow rules, the default applies: any host on port 443
/// (<see cref="Default"/>); deny rules still apply on top of it.</para>
/// </remarks>
public sealed class DestinationRules
{
    private static readonly DestinationRule[] s_defaultAllow = [Rule("*:443")];

    private readonly DestinationRule[] _allow;
    private readonly DestinationRule[] _deny;

    /// <summary>Creates the rules.</summary>
    /// <param name="allow">Allow rules; none means the default, <c>*:443</c>. Copied.</param>
    /// <param name="deny">Deny rules, which win over allow rules. Copied.</param>
    public DestinationRules(IEnumerable<DestinationRule> allow, IEnumerable<DestinationRule> deny)
    {
        ArgumentNullException.ThrowIfNull(allow);
        ArgumentNullException.ThrowIfNull(deny);
        _allow = [.. allow];
        _deny = [.. deny];
        if (Array.IndexOf(_allow, null) >= 0 || Array.IndexOf(_deny, null) >= 0)
        {
            throw new ArgumentException("A rule list contains null.");
        }
    }

    /// <summary>The default: any host on port 443, nothing denied.</summary>
    public static DestinationRules Default { get; } = new([], []);

    /// <summary>The configured allow rules; empty when the default (<c>*:443</c>) applies.</summary>
    public IReadOnlyList<DestinationRule> Allow => _allow;

    /// <summary>The configured deny rules.</summary>
    public IReadOnlyList<DestinationRule> Deny => _deny;

    /// <summary>The allow rules in force: the configured ones, or the default <c>*:443</c>.</summary>
    public IReadOnlyList<DestinationRule> EffectiveAllow => _allow.Length == 0 ? s_defaultAllow : _allow;

    /// <summary>Decides whether the relay may go on to resolve <paramref name="host"/>.</summary>
    /// <param name="host">
    /// The host as the request names it: a name, or an address literal in any form a resolver accepts,
    /// IPv6 bracketed or not. No port.
    /// </param>
    /// <param name="port">The destination port.</param>
    /// <returns>Allowed, or why not; the resolved addresses must still pass the <see cref="AddressPolicy"/>.</returns>
    public RuleVerdict Check(string host, int port)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (!RuleHost.TryCreate(host, out RuleHost normalized))
        {
            return new RuleVerdict(RuleStatus.InvalidHost, null);
        }

        foreach (DestinationRule rule in _deny)
        {
            if (rule.Matches(normalized, port))
            {
                return new RuleVerdict(RuleStatus.Denied, rule.Text);
            }
        }

        foreach (DestinationRule rule in EffectiveAllow)
        {
            if (rule.Matches(normalized, port))
            {
                return new RuleVerdict(RuleStatus.Allowed, rule.Text);
            }
        }

        return new RuleVerdict(RuleStatus.NotAllowed, null);
    }

    /// <summary>
    /// The form rules compare a host in: a name lower-case without its final dot; an address literal in
    /// its canonical text (IPv4 dotted quad, IPv6 compressed without brackets or zone, IPv4-mapped IPv6 as
    /// IPv4). For <see cref="DestinationRule.Matches(string, int)"/>.
    /// </summary>
    /// <param name="host">A host as a request names it.</param>
    /// <returns>The normalized host, or <see langword="null"/> when it is not a valid name or literal.</returns>
    public static string? NormalizeHost(string host)
    {
        ArgumentNullException.ThrowIfNull(host);
        return RuleHost.TryCreate(host, out RuleHost normalized) ? normalized.Text : null;
    }

    /// <summary>
    /// Parses configured allow and deny patterns, adding one message per bad entry to
    /// <paramref name="errors"/> so that a validator can report every error at once.
    /// </summary>
    /// <param name="allow">The configured allow patterns.</param>
    /// <param name="deny">The configured deny patterns.</param>
    /// <param name="allowKey">The key named in messages about allow patterns, e.g. <c>relay.allow</c>.</param>
    /// <param name="denyKey">The key named in messages about deny patterns, e.g. <c>relay.deny</c>.</param>
    /// <param name="errors">Receives messages such as
    /// <c>relay.deny[0]: 'example.org' has no port (use example.org:443, example.org:*)</c>.</param>
    /// <returns>The rules that parsed; complete only when no error was added.</returns>
    public static DestinationRules Parse(
        IReadOnlyList<string> allow,
        IReadOnlyList<string> deny,
        string allowKey,
        string denyKey,
        ICollection<string> errors)
    {
        ArgumentNullException.ThrowIfNull(allow);
        ArgumentNullException.ThrowIfNull(deny);
        ArgumentNullException.ThrowIfNull(allowKey);
        ArgumentNullException.ThrowIfNull(denyKey);
        ArgumentNullException.ThrowIfNull(errors);
        return new DestinationRules(ParseList(allow, allowKey, errors), ParseList(deny, denyKey, errors));
    }

    private static List<DestinationRule> ParseList(IReadOnlyList<string> entries, string key, ICollection<string> errors)
    {
        var rules = new List<DestinationRule>(entries.Count);
        for (int i = 0; i < entries.Count; i++)
        {
            if (DestinationRule.TryParse(entries[i], out DestinationRule? rule, out string? error))
            {
                rules.Add(rule);
            }
            else
            {
                errors.Add(string.Create(CultureInfo.InvariantCulture, $"{key}[{i}]: {error}"));
            }
        }

        return rules;
    }

    private static DestinationRule Rule(string text) =>
        DestinationRule.TryParse(text, out DestinationRule? rule, out string? error)
            ? rule
            : throw new InvalidOperationException(error);
}
