namespace Passage.Relay.Passthrough;

/// <summary>
/// Picks the route for a server name: an exact name first, then the longest matching
/// <c>*.suffix</c>, then <c>*</c>. Immutable and safe to share.
/// </summary>
public sealed class SniRouteTable
{
    private readonly Dictionary<string, SniRoute> _exact = new(StringComparer.Ordinal);
    private readonly List<(string Suffix, SniRoute Route)> _wildcards = new();
    private readonly SniRoute? _catchAll;

    /// <summary>Builds the table. A later duplicate pattern replaces an earlier one.</summary>
    public SniRouteTable(IEnumerable<SniRoute> routes)
    {
        foreach (var route in routes)
        {
            if (route.IsCatchAll)
            {
                _catchAll = route;
            }
            else if (route.IsWildcard)
            {
                _wildcards.RemoveAll(w => w.Suffix == route.Pattern[1..]);
                _wildcards.Add((route.Pattern[1..], route));
            }
            else
            {
                _exact[route.Pattern] = route;
            }
        }
        // Longest suffix first: the most specific wildcard wins.
        _wildcards.Sort((a, b) => b.Suffix.Length.CompareTo(a.Suffix.Length));
    }

    /// <summary>The number of routes.</summary>
    public int Count => _exact.Count + _wildcards.Count + (_catchAll is null ? 0 : 1);

    /// <summary>The route for <paramref name="serverName"/> (already lower-case, no trailing dot), or null.</summary>
    public SniRoute? Match(string serverName)
    {
        if (_exact.TryGetValue(serverName, out var exact))
        {
            return exact;
        }
        foreach (var (suffix, route) in _wildcards)
        {
            // suffix is ".example.org": the name must have at least one label before it.
            if (serverName.Length > suffix.Length && serverName.EndsWith(suffix, StringComparison.Ordinal))
            {
                return route;
            }
        }
        return _catchAll;
    }
}
