using System.Diagnostics.Metrics;
using Passage.Relay;
using Passage.Relay.Destinations;
using Passage.Transport;

namespace Passage.Telemetry;

/// <summary>
/// A relay's counters, through <see cref="System.Diagnostics.Metrics"/> (readable with
/// <c>dotnet-counters</c> or any OpenTelemetry exporter); also the front-door counters of a client's local proxies, under
/// the client's names (see <see cref="ClientMetrics"/>). All aggregate: no tag carries a client address or a destination.
/// </summary>
public sealed class RelayMetrics : IDisposable
{
    /// <summary>The meter's name.</summary>
    public const string MeterName = "Passage.Relay";

    private readonly Meter _meter;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _refused;
    private readonly UpDownCounter<long> _open;
    // The relay's own: a client's local front doors (see the other constructor) neither count nor show them.
    private readonly Counter<long>? _closed;
    private readonly Counter<long>? _tunnelsOpened;
    private readonly UpDownCounter<long>? _tunnelsOpen;
    private readonly Counter<long>? _dnsAnswers;
    private readonly Counter<long>? _dnsQueries;
    private readonly Counter<long>? _http2ConnectionErrors;

    /// <summary>Creates the instruments on a meter from <paramref name="meterFactory"/>, or on a new meter.</summary>
    public RelayMetrics(IMeterFactory? meterFactory = null)
        : this(meterFactory?.Create(MeterName) ?? new Meter(MeterName), "passage.relay")
    {
        _closed = _meter.CreateCounter<long>("passage.relay.connections.closed", "{connection}", "Relayed connections and tunnels ended, by how they ended");
        _tunnelsOpened = _meter.CreateCounter<long>("passage.relay.tunnels.opened", "{tunnel}", "CONNECT tunnels established (upstream connected, 2xx sent)");
        _tunnelsOpen = _meter.CreateUpDownCounter<long>("passage.relay.tunnels.open", "{tunnel}", "CONNECT tunnels relaying now");
        _dnsAnswers = _meter.CreateCounter<long>("passage.relay.dns.answers", "{answer}",
            "Destination names answered through DNS, by where the answer came from: the cache (hit), a lookup already under way (coalesced), a new lookup (miss); and kept names looked up again before they ran out (refreshed)");
        _dnsQueries = _meter.CreateCounter<long>("passage.relay.dns.queries", "{query}",
            "Questions the relay's own resolver put to a DNS server, by how the server answered: answered (an answer, or no such name), truncated (asked again over TCP), server_failure (SERVFAIL, REFUSED, ...), timeout, unreachable");

        _http2ConnectionErrors = _meter.CreateCounter<long>("passage.relay.http2.connection_errors", "{connection}",
            "HTTP/2 connections of the CONNECT door that Kestrel ended with an error, by Kestrel's error type (reason): a GOAWAY it sent for a header field or block past its bounds (error_reading_headers, max_request_headers_total_size_exceeded) or a frame breaking HTTP/2 (invalid_stream_id, ...); not the ordinary ends Kestrel also gives an error type (connection_reset, keep_alive_timeout, app_shutdown_timeout)");

        // The zero-copy path's pipes and fallbacks are the process's, read when collected.
        _meter.CreateObservableCounter("passage.relay.splice.fallbacks", ObserveFallbacks, "{fallback}",
            "Times a spliced direction copied through user space instead, by reason: no_pipe (the pipes' share of open files, the system's descriptors, or the user's pipe quota used up; counted per burst copied), refused (the kernel refused splice for those sockets; counted once per direction, and a kernel without splice is counted once, after which every connection copies), blocking_socket");
        _meter.CreateObservableGauge("passage.relay.splice.pipes", () => SplicePipe.OpenCount, "{pipe}",
            "Splice pipes open now (moving bytes, or kept spare)");
        _meter.CreateObservableGauge("passage.relay.splice.pipe_capacity", () => SplicePipe.OpenCapacity, "By",
            "Capacity of the splice pipes open now: what counts against fs.pipe-user-pages-soft");
    }

    /// <summary>
    /// The front-door counters alone (<c>PREFIX.connections.accepted</c>, <c>.refused</c>, <c>.open</c>, <c>.bytes</c>) on
    /// <paramref name="meter"/>: what a client's local front doors count, the same way a relay's do, under the client's
    /// own names (<see cref="ClientMetrics"/>).
    /// </summary>
    internal RelayMetrics(Meter meter, string prefix)
    {
        _meter = meter;
        _accepted = _meter.CreateCounter<long>(prefix + ".connections.accepted", "{connection}", "Client connections accepted");
        _refused = _meter.CreateCounter<long>(prefix + ".connections.refused", "{connection}", "Client connections turned away before relaying, by reason");
        _open = _meter.CreateUpDownCounter<long>(prefix + ".connections.open", "{connection}", "Client connections open now");
        _meter.CreateObservableCounter(prefix + ".bytes", ObserveBytes, "By", "Bytes delivered, by direction, counted as each write completes");
    }

    /// <summary>
    /// Where the relay's pumps add the bytes they deliver, as they deliver them (<see cref="PumpOptions.Tally"/>); read as
    /// <c>passage.relay.bytes</c>, so that a long-lived connection's bytes show while it lasts.
    /// </summary>
    internal ByteTally Bytes { get; } = new();

    /// <summary>Each direction once bytes have gone that way: a series appears once it has been counted, as a counter's would.</summary>
    private IEnumerable<Measurement<long>> ObserveBytes()
    {
        if (Bytes.ToUpstream is var toUpstream and > 0)
        {
            yield return new Measurement<long>(toUpstream, new KeyValuePair<string, object?>("direction", "client_to_upstream"));
        }
        if (Bytes.ToClient is var toClient and > 0)
        {
            yield return new Measurement<long>(toClient, new KeyValuePair<string, object?>("direction", "upstream_to_client"));
        }
    }

    private static IEnumerable<Measurement<long>> ObserveFallbacks()
    {
        foreach (var reason in SpliceFallbacks.All)
        {
            yield return new Measurement<long>(SpliceFallbacks.Of(reason), new KeyValuePair<string, object?>("reason", SpliceFallbacks.Name(reason)));
        }
    }

    /// <summary>The meter, for listeners that filter by instance.</summary>
    public Meter Meter => _meter;

    /// <summary>Counts an accepted client connection (before any limit check).</summary>
    public void Accepted(string frontDoor) => _accepted.Add(1, new KeyValuePair<string, object?>("front_door", frontDoor));

    /// <summary>Counts a refusal.</summary>
    public void Refused(string frontDoor, RefusalReason reason) =>
        _refused.Add(1, new KeyValuePair<string, object?>("front_door", frontDoor), new KeyValuePair<string, object?>("reason", reason.Name()));

    /// <summary>Tracks connections open now.</summary>
    public void Open(int delta) => _open.Add(delta);

    /// <summary>Counts a tunnel that starts relaying (its upstream connected, the client answered); each is counted closed once.</summary>
    public void TunnelOpened(string frontDoor) => _tunnelsOpened?.Add(1, new KeyValuePair<string, object?>("front_door", frontDoor));

    /// <summary>Tracks tunnels relaying now.</summary>
    public void TunnelOpen(int delta) => _tunnelsOpen?.Add(delta);

    /// <summary>Counts a DNS answer for a destination name by where it came from.</summary>
    internal void DnsAnswered(DnsCacheResult result) => _dnsAnswers?.Add(1, new KeyValuePair<string, object?>("result", result switch
    {
        DnsCacheResult.Hit => "hit",
        DnsCacheResult.Coalesced => "coalesced",
        DnsCacheResult.Refreshed => "refreshed",
        _ => "miss",
    }));

    /// <summary>Counts a question the relay's own resolver put to a DNS server, by how it was answered (tag <c>result</c>).</summary>
    internal void DnsQueried(string outcome) => _dnsQueries?.Add(1, new KeyValuePair<string, object?>("result", outcome));

    /// <summary>Counts an HTTP/2 connection that Kestrel ended with an error, by Kestrel's name for it (tag <c>reason</c>).</summary>
    internal void Http2ConnectionFailed(string errorType) => _http2ConnectionErrors?.Add(1, new KeyValuePair<string, object?>("reason", errorType));

    /// <summary>Counts a finished relay run by how it ended (its bytes were counted as they went, <see cref="Bytes"/>).</summary>
    public void Relayed(string frontDoor, in PumpResult result)
    {
        var end = result.End switch
        {
            PumpEnd.Completed => "completed",
            PumpEnd.IdleTimeout => "idle_timeout",
            PumpEnd.Canceled => "shutdown",
            _ => result.FailedSide == PumpSide.Client ? "client_failed" : "upstream_failed",
        };
        _closed?.Add(1, new KeyValuePair<string, object?>("front_door", frontDoor), new KeyValuePair<string, object?>("end", end));
    }

    /// <inheritdoc />
    public void Dispose() => _meter.Dispose();
}
