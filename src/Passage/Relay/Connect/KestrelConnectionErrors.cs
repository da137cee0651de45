using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Passage.Telemetry;

namespace Passage.Relay.Connect;

/// <summary>
/// Counts the HTTP/2 connections that the CONNECT door's Kestrel ends with an error, by the error type Kestrel's own
/// metric gives them: <c>error.type</c> on <c>kestrel.connection.duration</c> (meter
/// <c>Microsoft.AspNetCore.Server.Kestrel</c>), such as the GOAWAY it sends for a header field past HPACK's bound
/// (<c>error_reading_headers</c>), for a header block past twice its bound (<c>max_request_headers_total_size_exceeded</c>)
/// or for a frame that breaks HTTP/2 (<c>invalid_stream_id</c>, ...). Kestrel gives an error type to some ends that are
/// ordinary for a relay (<see cref="OrdinaryEnds"/>): those are not counted.
/// </summary>
/// <remarks>
/// Kestrel measures a connection once, when it ends: this is work per connection, none per request. Only the meters of
/// the CONNECT door's own Kestrel are heard (its meter factory), not those of the admin listener's. A stream Kestrel
/// resets before the relay sees its request (RST_STREAM for a request HTTP/2 calls malformed, REFUSED_STREAM past
/// SETTINGS_MAX_CONCURRENT_STREAMS) is in none of Kestrel's metrics (.NET 10: only its Debug log events 30 and 35 of
/// <c>Microsoft.AspNetCore.Server.Kestrel.Http2</c> tell of one), so it is counted nowhere.
/// </remarks>
internal sealed class KestrelConnectionErrors : IDisposable
{
    private const string KestrelMeter = "Microsoft.AspNetCore.Server.Kestrel";
    private const string ConnectionDuration = "kestrel.connection.duration";
    private const string ErrorType = "error.type";

    /// <summary>
    /// Error types Kestrel gives ends that are no one's error here: <c>connection_reset</c>, a client that closed or
    /// reset its connection with tunnels open (the way a client leaves, it and each tunnel counted in
    /// <c>passage.relay.connections.closed</c> already); <c>keep_alive_timeout</c>, one gone silent, its PING unanswered
    /// or no frame for Kestrel's keep-alive timeout; <c>app_shutdown_timeout</c>, one still open when the relay's stop
    /// closed it, it and its tunnels counted <c>shutdown</c>.
    /// </summary>
    internal static readonly FrozenSet<string> OrdinaryEnds = FrozenSet.Create(StringComparer.Ordinal, "connection_reset", "keep_alive_timeout", "app_shutdown_timeout");

    private readonly MeterListener _listener = new();

    /// <summary>Starts counting the errors of the Kestrel whose meters <paramref name="kestrelMeters"/> creates, into <paramref name="metrics"/>.</summary>
    public KestrelConnectionErrors(IMeterFactory kestrelMeters, RelayMetrics metrics)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, kestrelMeters) && instrument.Meter.Name == KestrelMeter && instrument.Name == ConnectionDuration)
            {
                listener.EnableMeasurementEvents(instrument, metrics);
            }
        };
        _listener.SetMeasurementEventCallback<double>(static (_, _, tags, state) =>
        {
            string? error = null;
            Watch? watch = null;
            foreach (var tag in tags)
            {
                if (tag.Key == ErrorType && tag.Value is string type)
                {
                    error = type;
                }
                else if (tag.Key == WatchTag && tag.Value is Watch watched)
                {
                    watch = watched;
                }
            }
            if (error is not null && !OrdinaryEnds.Contains(error))
            {
                ((RelayMetrics)state!).Http2ConnectionFailed(error);
                watch?.Errored();
            }
        });
        _listener.Start();
    }

    /// <summary>
    /// The tag under which a connection's <see cref="Watch"/> rides on Kestrel's measurement of it. Passage's /metrics does
    /// not show Kestrel's meters; a listener that does sees this tag with the one value <c>Watch</c>.
    /// </summary>
    private const string WatchTag = "passage.kestrel_connection_watch";

    /// <summary>
    /// Has Kestrel's measurement of <paramref name="connection"/>'s end tell the <see cref="Watch"/> in its features, if
    /// any. For a connection middleware: Kestrel sets the feature that carries a connection's own tags just before it
    /// runs them, and measures the end before it disposes the connection, so the watch knows by then.
    /// </summary>
    public static void Follow(ConnectionContext connection)
    {
        if (connection.Features.Get<Watch>() is { } watch && connection.Features.Get<IConnectionMetricsTagsFeature>() is { } tags)
        {
            tags.Tags.Add(new KeyValuePair<string, object?>(WatchTag, watch));
        }
    }

    /// <summary>
    /// Whether Kestrel ended one connection with an error counted in <c>passage.relay.http2.connection_errors</c> (not one
    /// of <see cref="OrdinaryEnds"/>): set on the connection's features before it is handed to Kestrel.
    /// </summary>
    public sealed class Watch
    {
        private volatile bool _errored;

        /// <summary>Whether Kestrel ended the connection with an error: known once Kestrel has disposed it.</summary>
        public bool IsErrored => _errored;

        internal void Errored() => _errored = true;

        /// <inheritdoc />
        public override string ToString() => nameof(Watch);

        /// <summary>
        /// Every watch equals every other: the tag rides on Kestrel's measurement, which any listener in the process also
        /// hears (dotnet-counters, an OpenTelemetry exporter), and those aggregate by tag value. Equal values keep them at
        /// one series, not one per connection.
        /// </summary>
        public override bool Equals(object? obj) => obj is Watch;

        /// <inheritdoc />
        public override int GetHashCode() => typeof(Watch).GetHashCode();
    }

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
