using System.Diagnostics.CodeAnalysis;
using Passage.Configuration;

namespace Passage.Relay.Passthrough;

/// <summary>
/// One pass-through route: a server-name pattern and where matching connections go.
/// </summary>
/// <remarks>
/// Patterns: an exact name (<c>api.example.org</c>), a wildcard <c>*.example.org</c> matching any name
/// below <c>example.org</c> (one label or more, not <c>example.org</c> itself), or <c>*</c> matching any
/// name. Case-insensitive, trailing dot ignored. The upstream is <c>host:port</c>, or <c>:port</c>
/// meaning the server name itself on that port.
/// </remarks>
/// <param name="Pattern">The pattern, normalized (lower case, no trailing dot).</param>
/// <param name="Upstream">A fixed upstream, or null to use the server name itself.</param>
/// <param name="Port">The upstream port.</param>
public sealed record SniRoute(string Pattern, string? Upstream, int Port)
{
    /// <summary>True for <c>*.suffix</c> patterns.</summary>
    public bool IsWildcard => Pattern.StartsWith("*.", StringComparison.Ordinal);

    /// <summary>True for the catch-all pattern <c>*</c>.</summary>
    public bool IsCatchAll => Pattern == "*";

    /// <summary>Parses a pattern and an upstream; an error text on failure.</summary>
    public static bool TryParse(string pattern, string upstream, [NotNullWhen(true)] out SniRoute? route, out string? error)
    {
        route = null;
        var p = pattern.Trim();
        // One final dot, as a name may have: trimming them all made "*.." the catch-all and "a.test.." a name.
        p = p.EndsWith('.') ? p[..^1] : p;
        var name = p.StartsWith("*.", StringComparison.Ordinal) ? p[2..] : p;
        // Checked before it is lowered: the invariant culture lowers the Kelvin sign (U+212A) to an ASCII 'k', which
        // made a name no client can send a route for another one.
        if (p != "*" && (name.EndsWith('.') || Destinations.HostSyntax.Parse(name, out _) != Destinations.HostKind.Name))
        {
            error = $"'{pattern}' is not a host name, '*.' wildcard or '*'";
            return false;
        }
        p = p.ToLowerInvariant();
        var u = upstream.Trim();
        if (u.StartsWith(':'))
        {
            if (!HostPort.TryParsePort(u[1..], out var port))
            {
                error = $"'{upstream}' has no valid port (expected host:port or :port)";
                return false;
            }
            route = new SniRoute(p, null, port);
            error = null;
            return true;
        }
        if (!HostPort.TryParse(u, out var target, out var why))
        {
            error = $"upstream '{upstream}': {why}";
            return false;
        }
        route = new SniRoute(p, target.Value.Host, target.Value.Port);
        error = null;
        return true;
    }

    /// <summary>Where a connection for <paramref name="serverName"/> goes under this route.</summary>
    public HostPort TargetFor(string serverName) => new(Upstream ?? serverName, Port);

    /// <summary>The upstream as written: <c>host:port</c> or <c>:port</c>.</summary>
    public string UpstreamText => Upstream is null ? $":{Port}" : new HostPort(Upstream, Port).ToString();
}
