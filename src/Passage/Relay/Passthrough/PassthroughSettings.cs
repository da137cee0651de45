using System.Net;
using Passage.Configuration;

namespace Passage.Relay.Passthrough;

/// <summary>The pass-through keys of the <c>relay</c> section: <c>passthrough</c>, <c>routes</c>, <c>upstream</c>, <c>handshakeTimeout</c>.</summary>
public static class PassthroughSettings
{
    /// <summary>Where the pass-through front door listens when routes are set but no endpoint: loopback only.</summary>
    public static readonly IPEndPoint DefaultEndpoint = new(IPAddress.Loopback, 9443);

    /// <summary>The pass-through front door's settings, or null when none is set.</summary>
    public static PassthroughOptions? Read(SettingsReader reader)
    {
        var (endpoints, _) = RelaySettings.ReadEndpoints(reader, "relay:passthrough");

        var routes = new List<SniRoute>();
        // Patterns are read ignoring case and a trailing dot: two that read as one ("a.example" and "A.example.") were both
        // taken, one of them dropped without a word, and the effective settings printed the key twice, which does not read back.
        var patterns = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, pattern, upstream, layer) in reader.GetMap("relay:routes"))
        {
            if (SniRoute.TryParse(pattern, upstream, out var route, out var error))
            {
                if (!patterns.TryAdd(route.Pattern, key))
                {
                    reader.AddError(key, $"the same pattern as {SettingsReader.Display(patterns[route.Pattern])} (read ignoring case and a trailing dot); give it once", layer);
                    continue;
                }
                routes.Add(route);
            }
            else
            {
                reader.AddError(key, error!, layer);
            }
        }

        HostPort? fixedUpstream = null;
        if (reader.GetString("relay:upstream") is { Length: > 0 } upstreamText)
        {
            if (HostPort.TryParse(upstreamText, out var parsed, out var error))
            {
                fixedUpstream = parsed;
            }
            else
            {
                reader.AddErrorWhereSet("relay:upstream", $"'{upstreamText}': {error}");
            }
        }

        if (fixedUpstream is not null && routes.Count > 0)
        {
            reader.AddError("relay:upstream", "set either relay.upstream (one fixed upstream) or relay.routes (by server name), not both");
        }
        if (endpoints.Count == 0 && routes.Count == 0 && fixedUpstream is null)
        {
            return null;
        }
        if (routes.Count == 0 && fixedUpstream is null)
        {
            reader.AddError("relay:routes", "no route and no upstream: every connection would be refused (add --route PATTERN=UPSTREAM or --upstream HOST:PORT)");
        }
        else if (endpoints.Count == 0)
        {
            endpoints.Add(DefaultEndpoint);
        }
        return new PassthroughOptions
        {
            Endpoints = endpoints,
            Routes = routes,
            Upstream = fixedUpstream,
        };
    }
}
