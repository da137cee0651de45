namespace Passage.Relay.Passthrough;

/// <summary>
/// Picks the route for a server name: an exact name first, then the longest matching
/// <c>*.suffix</c>, then <c>*</c>. Immutable and safe to share.
/// </summary>
public sealed class SniRouteTable
{
    private readonly Dictionary<string, SniRoute> _exact = new(StringComparer.Ordinal);
    // By suffix (".example.org" for *.example.org): found by the name's own suffixes, longest first, so that building the
    // table and matching a name cost the same with 50,000 wildcards as with one (a list, emptied of the pattern's earlier
    // duplicate at each add and walked whole at each match, made both grow with their number).
    private readonly Dictionary<string, SniRoute> _wildcards = new(StringComparer.Ordinal);
    private readonly Dictionary<string, SniRoute>.AlternateLookup<ReadOnlySpan<char>> _wildcardsBySpan;
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
                _wildcards[route.Pattern[1..]] = route;
            }
            else
            {
                _exact[route.Pattern] = route;
            }
        }
        _wildcardsBySpan = _wildcards.GetAlternateLookup<ReadOnlySpan<char>>();
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
        if (_wildcards.Count > 0 && serverName.Length > 1)
        {
            // Its suffixes from each dot, longest first: the most specific wildcard wins. A suffix is ".example.org", and the
            // name must have at least one label before it, so a dot at its start begins none.
            for (var dot = serverName.IndexOf('.', 1); dot > 0; dot = serverName.IndexOf('.', dot + 1))
            {
                if (_wildcardsBySpan.TryGetValue(serverName.AsSpan(dot), out var route))
                {
                    return route;
                }
            }
        }
        return _catchAll;
    }
}
