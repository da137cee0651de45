using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Passage.Relay.Destinations;

/// <summary>
/// One <c>--allow</c> or <c>--deny</c> pattern, <c>host:port</c>, parsed. Immutable and safe to share.
/// </summary>
/// <remarks>
/// <para>The host, matched against a host normalized as <see cref="DestinationRules.NormalizeHost"/> does:</para>
/// <list type="bullet">
/// <item><c>api.example.org</c>: that name, ignoring case and a final dot.</item>
/// <item><c>*.example.org</c>: any name below <c>example.org</c> (one label or more), not <c>example.org</c> itself.</item>
/// <item><c>*</c>: any host, names and address literals alike.</item>
/// <item><c>~regex</c>: a .NET regular expression that must match the whole name, never part of it and never
/// the port: <c>~api\.example\.org</c> is compiled as <c>\A(?:api\.example\.org)\z</c>. It runs without
/// backtracking (<see cref="RegexOptions.NonBacktracking"/>), in time linear in the name, so neither a
/// hostile pattern nor a hostile name can stall the relay; constructs that need backtracking
/// (backreferences, lookarounds, atomic groups) are refused when the pattern is parsed.</item>
/// <item><c>192.0.2.1</c>, <c>[2001:db8::1]</c>: that address. The request's host is normalized first, so
/// <c>127.1</c>, <c>2130706433</c>, <c>0x7f.1</c> and <c>[::ffff:127.0.0.1]</c> all match a pattern
/// <c>127.0.0.1</c>. In a pattern, IPv4 is written as a plain dotted quad (<c>010.0.0.1</c> would be read
/// as 8.0.0.1 by a resolver, so such forms are refused rather than guessed at), and IPv6 in brackets
/// without a zone.</item>
/// </list>
/// <para>An address literal in a request matches only <c>*</c> and address patterns: never an exact name,
/// a <c>*.suffix</c>, or a regular expression, which are all about names.</para>
/// <para>The port: <c>443</c>, an inclusive range <c>8000-8999</c>, or <c>*</c> (1 to 65535).</para>
/// <para>The host and port are split at the last colon (after the closing bracket for IPv6). A regular
/// expression may contain colons; its port is still after the last one, so <c>~a:b:443</c> is the
/// regular expression <c>a:b</c> on port 443.</para>
/// </remarks>
public sealed class DestinationRule
{
    private const RegexOptions Options =
        RegexOptions.NonBacktracking | RegexOptions.IgnoreCase | RegexOptions.CultureInvariant;

    private readonly HostPatternKind _kind;

    // The name (Exact), ".suffix" with its leading dot (Suffix), or the canonical address (Address).
    private readonly string _host;
    private readonly Regex? _regex;
    private readonly PortRange _ports;

    private DestinationRule(string text, HostPatternKind kind, string host, Regex? regex, PortRange ports)
    {
        Text = text;
        _kind = kind;
        _host = host;
        _regex = regex;
        _ports = ports;
    }

    /// <summary>The pattern as configured, for messages and logs.</summary>
    public string Text { get; }

    /// <summary>Parses a <c>host:port</c> pattern.</summary>
    /// <param name="text">The pattern as configured.</param>
    /// <param name="rule">The rule, on success.</param>
    /// <param name="error">On failure, why, naming the pattern but not its configuration key.</param>
    /// <returns>Whether <paramref name="text"/> is a valid pattern.</returns>
    public static bool TryParse(
        string? text, [NotNullWhen(true)] out DestinationRule? rule, [NotNullWhen(false)] out string? error)
    {
        rule = null;
        if (string.IsNullOrEmpty(text))
        {
            error = "an empty entry is not a host:port pattern";
            return false;
        }

        if (!TrySplit(text, out string? hostText, out string? portText, out error))
        {
            return false;
        }

        if (!PortRange.TryParse(portText, out PortRange ports, out string? portError))
        {
            error = $"'{text}': {portError}";
            return false;
        }

        if (!TryParseHost(hostText, out HostPatternKind kind, out string? host, out Regex? regex, out string? hostError))
        {
            // A regular expression's error names the expression itself, as written.
            error = kind == HostPatternKind.Regex ? hostError : $"'{text}': {hostError}";
            return false;
        }

        rule = new DestinationRule(text, kind, host, regex, ports);
        return true;
    }

    /// <summary>Whether this rule matches a destination.</summary>
    /// <param name="normalizedHost">
    /// The host, as <see cref="DestinationRules.NormalizeHost"/> returns it. Normalizing is idempotent, so
    /// any other form a request may use is normalized here first; an invalid host matches nothing.
    /// </param>
    /// <param name="port">The destination port.</param>
    /// <returns>Whether both the host and the port match.</returns>
    public bool Matches(string normalizedHost, int port)
    {
        ArgumentNullException.ThrowIfNull(normalizedHost);
        return RuleHost.TryCreate(normalizedHost, out RuleHost host) && Matches(host, port);
    }

    /// <inheritdoc />
    public override string ToString() => Text;

    /// <summary>Whether this rule matches an already normalized host and a port.</summary>
    internal bool Matches(RuleHost host, int port)
    {
        if (!_ports.Contains(port))
        {
            return false;
        }

        return _kind switch
        {
            HostPatternKind.Any => true,
            HostPatternKind.Address => host.IsAddress && string.Equals(host.Text, _host, StringComparison.Ordinal),
            HostPatternKind.Exact => !host.IsAddress && string.Equals(host.Text, _host, StringComparison.Ordinal),

            // _host is ".example.org": the name needs at least one label before it.
            HostPatternKind.Suffix => !host.IsAddress && host.Text.Length > _host.Length
                && host.Text.EndsWith(_host, StringComparison.Ordinal),
            HostPatternKind.Regex => !host.IsAddress && _regex!.IsMatch(host.Text),
            _ => false,
        };
    }

    private static bool TrySplit(
        string text,
        [NotNullWhen(true)] out string? host,
        [NotNullWhen(true)] out string? port,
        [NotNullWhen(false)] out string? error)
    {
        host = port = null;
        error = null;
        int colon = text.LastIndexOf(':');
        if (text[0] == '[' && text[^1] != ']')
        {
            // "[2001:db8::1]:443": the port follows the closing bracket.
            int close = text.IndexOf(']', StringComparison.Ordinal);
            if (close < 0 || close + 1 >= text.Length || text[close + 1] != ':')
            {
                error = $"'{text}' is not [address]:port";
                return false;
            }

            colon = close + 1;
        }

        if (colon < 0 || (text[0] == '[' && text[^1] == ']'))
        {
            error = $"'{text}' has no port (use {text}:443, {text}:*)";
            return false;
        }

        host = text[..colon];
        port = text[(colon + 1)..];
        if (host.Length == 0)
        {
            error = $"'{text}' has no host (use *:{port} for any host)";
            return false;
        }

        return true;
    }

    private static bool TryParseHost(
        string text,
        out HostPatternKind kind,
        [NotNullWhen(true)] out string? host,
        out Regex? regex,
        [NotNullWhen(false)] out string? error)
    {
        kind = HostPatternKind.Any;
        host = null;
        regex = null;
        error = null;
        if (text == "*")
        {
            host = "*";
            return true;
        }

        if (text[0] == '~')
        {
            kind = HostPatternKind.Regex;
            host = text;
            return TryCompile(text[1..], out regex, out error);
        }

        if (text.StartsWith("*.", StringComparison.Ordinal))
        {
            string suffix = text[2..];
            if (HostSyntax.Parse(suffix, out _) != HostKind.Name)
            {
                error = $"'{suffix}' after '*.' is not a host name";
                return false;
            }

            kind = HostPatternKind.Suffix;
            host = "." + HostSyntax.ToMapKey(suffix).ToLowerInvariant();
            return true;
        }

        if (text.Contains(':', StringComparison.Ordinal) && text[0] != '[')
        {
            error = $"an IPv6 address must be in brackets, as [2001:db8::1]:443";
            return false;
        }

        switch (HostSyntax.Parse(text, out IPAddress? address))
        {
            case HostKind.Name:
                kind = HostPatternKind.Exact;
                host = HostSyntax.ToMapKey(text).ToLowerInvariant();
                return true;
            case HostKind.Address when address!.AddressFamily == AddressFamily.InterNetwork && address.ToString() != text:
                error = $"write an IPv4 address as a plain dotted quad ('{text}' is {address})";
                return false;
            case HostKind.Address when text.Contains('%', StringComparison.Ordinal):
                error = "an address pattern cannot name a zone";
                return false;
            case HostKind.Address:
                kind = HostPatternKind.Address;
                host = RuleHost.Canonical(address!);
                return true;
            default:
                error = $"'{text}' is not a host name, '*.suffix', '*', '~regex' or IP address";
                return false;
        }
    }

    private static bool TryCompile(string pattern, out Regex? regex, [NotNullWhen(false)] out string? error)
    {
        regex = null;
        error = null;
        if (pattern.Length == 0)
        {
            error = "the regular expression after '~' is empty";
            return false;
        }

        try
        {
            // The pattern must stand alone first: wrapping "a)|(b" would otherwise give the
            // unanchored "\A(?:a)|(b)\z". A pattern that parses alone has balanced groups, so
            // the wrapping group holds all of it. \A and \z rather than ^ and $: $ also matches
            // before a final newline, and neither is affected by inline options such as (?m).
            _ = new Regex(pattern, Options);
            regex = new Regex(@"\A(?:" + pattern + @")\z", Options);
            return true;
        }
        catch (NotSupportedException exception)
        {
            error = $"'~{pattern}' cannot run without backtracking: {exception.Message}";
            return false;
        }
        catch (ArgumentException exception)
        {
            error = $"'~{pattern}' is not a valid regular expression: {exception.Message}";
            return false;
        }
    }
}
