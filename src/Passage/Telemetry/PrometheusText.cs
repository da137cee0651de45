using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;

namespace Passage.Telemetry;

/// <summary>
/// Collects the counters of one <see cref="Meter"/> and renders them in the Prometheus text
/// exposition format (version 0.0.4): counters as <c>NAME_total</c>, up-down counters and gauges as
/// gauges. Observable instruments are read when rendering, and report their value as it is then.
/// Tags become labels; Passage's tags are aggregate by design (no addresses, no destinations).
/// </summary>
public sealed class PrometheusText : IDisposable
{
    /// <summary>What a metric or label name may hold besides a leading digit (see <see cref="Name"/>).</summary>
    private static readonly SearchValues<char> s_nameCharacters = SearchValues.Create("_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private readonly MeterListener _listener = new();
    private readonly Lock _renderLock = new();
    private readonly ConcurrentDictionary<Instrument, ConcurrentDictionary<string, long>> _values = new();

    /// <summary>Starts collecting the instruments of <paramref name="meter"/>.</summary>
    public PrometheusText(Meter meter)
    {
        ArgumentNullException.ThrowIfNull(meter);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == meter && instrument is Counter<long> or UpDownCounter<long>
                or ObservableCounter<long> or ObservableGauge<long> or ObservableUpDownCounter<long>)
            {
                _values.TryAdd(instrument, new ConcurrentDictionary<string, long>(StringComparer.Ordinal));
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (!_values.TryGetValue(instrument, out var series))
            {
                return;
            }
            var labels = new StringBuilder();
            foreach (var tag in tags)
            {
                labels.Append(labels.Length == 0 ? "{" : ",").Append(Name(tag.Key)).Append("=\"").Append(Escape(Convert.ToString(tag.Value, CultureInfo.InvariantCulture))).Append('"');
            }
            if (labels.Length > 0)
            {
                labels.Append('}');
            }
            if (instrument.IsObservable)
            {
                // A total (or a level) as of now, not an increment.
                series[labels.ToString()] = value;
            }
            else
            {
                series.AddOrUpdate(labels.ToString(), value, (_, old) => old + value);
            }
        });
        _listener.Start();
    }

    /// <summary>The current values, rendered.</summary>
    public string Render()
    {
        // One render at a time: two scrapes recording observable totals at once could leave the older
        // total last, which a reader takes for a counter reset.
        lock (_renderLock)
        {
            return RenderLocked();
        }
    }

    private string RenderLocked()
    {
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var (instrument, series) in _values.OrderBy(v => v.Key.Name, StringComparer.Ordinal))
        {
            var isCounter = instrument is Counter<long> or ObservableCounter<long>;
            var name = Name(instrument.Name);
            if (instrument.Unit == "By" && !name.EndsWith("_bytes", StringComparison.Ordinal))
            {
                name += "_bytes";
            }
            name += isCounter ? "_total" : "";
            text.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(instrument.Description)).Append('\n');
            text.Append("# TYPE ").Append(name).Append(isCounter ? " counter\n" : " gauge\n");
            if (series.IsEmpty)
            {
                text.Append(name).Append(" 0\n");
            }
            foreach (var (labels, value) in series.OrderBy(s => s.Key, StringComparer.Ordinal))
            {
                text.Append(name).Append(labels).Append(' ').Append(value.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
        }
        return text.ToString();
    }

    /// <summary>
    /// <paramref name="name"/> (an instrument's or a tag's) as a Prometheus metric or label name: each character other than a
    /// letter, a digit or <c>_</c> becomes <c>_</c> (the dots of <c>passage.relay.bytes</c> among them), and one that would
    /// begin with a digit is preceded by <c>_</c>. A meter given to the admin listener may name its instruments with any
    /// character .NET allows (<c>-</c>, <c>/</c>), and one such name made the whole exposition unreadable to a scraper.
    /// </summary>
    private static string Name(string name)
    {
        if (name.Length > 0 && !char.IsAsciiDigit(name[0]) && !name.AsSpan().ContainsAnyExcept(s_nameCharacters))
        {
            return name;
        }
        var text = new StringBuilder(name.Length + 1);
        if (name.Length == 0 || char.IsAsciiDigit(name[0]))
        {
            text.Append('_');
        }
        foreach (var c in name)
        {
            text.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        }
        return text.ToString();
    }

    /// <summary>A HELP line's text as the format wants it: backslash and line feed escaped, so that a description cannot end the line.</summary>
    private static string EscapeHelp(string? help) =>
        (help ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    private static string Escape(string? value) =>
        (value ?? "").Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal).Replace("\n", "\\n", StringComparison.Ordinal);

    /// <inheritdoc />
    public void Dispose() => _listener.Dispose();
}
