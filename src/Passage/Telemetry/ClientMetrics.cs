using System.Diagnostics.Metrics;
using System.Text;
using Passage.Client;

namespace Passage.Telemetry;

/// <summary>
/// The counters of a <see cref="PassageClient"/> (meter <c>Passage.Client</c>): tunnels opened and failed, its relays by
/// state, and the front-door counters of the local proxies serving it (<see cref="FrontDoors"/>, the same instruments a
/// relay's front doors count into, named <c>passage.client.*</c>, and the connections they closed). All aggregate: no tag carries an application's address,
/// a destination or a relay.
/// </summary>
public sealed class ClientMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Passage.Client";

    private readonly Meter _meter;
    private readonly Counter<long> _tunnelsOpened;
    private readonly Counter<long> _tunnelsFailed;
    private readonly Counter<long> _connectionsClosed;

    /// <summary>Creates the instruments; <paramref name="relays"/> tells how many relays are in each state when read.</summary>
    internal ClientMetrics(Func<RelayStates> relays)
    {
        _meter = new Meter(MeterName);
        FrontDoors = new RelayMetrics(_meter, "passage.client");
        _tunnelsOpened = _meter.CreateCounter<long>("passage.client.tunnels.opened", "{tunnel}",
            "Tunnels a relay opened (its 2xx came), for the local proxies and the library alike");
        _tunnelsFailed = _meter.CreateCounter<long>("passage.client.tunnels.failed", "{tunnel}",
            "Tunnels no relay opened, by the failure the application was given (failure)");
        _connectionsClosed = _meter.CreateCounter<long>("passage.client.connections.closed", "{connection}",
            "Local proxy connections ended, by front door (front_door): each one counted in connections.open, once it ends, refused or served");
        _meter.CreateObservableGauge("passage.client.relays", () => ObserveRelays(relays()), "{relay}",
            "Configured relays by state: up (new tunnels go there), refusing (up, but it refused this client's credentials lately), down (failed; probed with backoff)");
    }

    /// <summary>The meter, for listeners that filter by instance.</summary>
    public Meter Meter => _meter;

    /// <summary>Where the local front doors count their connections (<see cref="LocalProxy"/>).</summary>
    internal RelayMetrics FrontDoors { get; }

    /// <summary>Counts a tunnel a relay opened.</summary>
    internal void TunnelOpened() => _tunnelsOpened.Add(1);

    /// <summary>
    /// Counts a local proxy's connection that has ended, by its front door (<c>socks</c>, <c>http-proxy</c>): each one
    /// counted in <c>connections.open</c>, refused or served, once it ends (one refused at the connection limit never
    /// opened, and is counted in <c>connections.refused</c> alone).
    /// </summary>
    internal void ConnectionClosed(string frontDoor) => _connectionsClosed.Add(1, new KeyValuePair<string, object?>("front_door", frontDoor));

    /// <summary>Counts a tunnel no relay opened, by the failure reported for it.</summary>
    internal void TunnelFailed(TunnelFailure failure) => _tunnelsFailed.Add(1, new KeyValuePair<string, object?>("failure", Name(failure)));

    /// <summary>A failure's tag value: its name in snake case (<c>relay_unavailable</c>, <c>dns_error</c>).</summary>
    internal static string Name(TunnelFailure failure)
    {
        var name = failure.ToString();
        var text = new StringBuilder(name.Length + 4);
        foreach (var c in name)
        {
            if (char.IsUpper(c) && text.Length > 0)
            {
                text.Append('_');
            }
            text.Append(char.ToLowerInvariant(c));
        }
        return text.ToString();
    }

    /// <summary>Every state, a zero included, so that an alert on <c>state="up"</c> has a series to read.</summary>
    private static IEnumerable<Measurement<long>> ObserveRelays(RelayStates states)
    {
        yield return new Measurement<long>(states.Up, new KeyValuePair<string, object?>("state", "up"));
        yield return new Measurement<long>(states.Refusing, new KeyValuePair<string, object?>("state", "refusing"));
        yield return new Measurement<long>(states.Down, new KeyValuePair<string, object?>("state", "down"));
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}

/// <summary>How many of a client's relays are in each state (see <see cref="ClientMetrics"/>).</summary>
/// <param name="Up">Up, and taking this client's credentials: new tunnels go there.</param>
/// <param name="Refusing">Up, but it refused this client's credentials lately (407): tried after the others.</param>
/// <param name="Down">Failed, and probed with backoff.</param>
public readonly record struct RelayStates(int Up, int Refusing, int Down);
