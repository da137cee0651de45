using System.Buffers;
using System.Collections.Concurrent;
using System.Collections.Frozen;
using System.Diagnostics.Metrics;
using System.Globalization;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Passage.Telemetry;

/// <summary>
/// Collects the counters of one <see cref="Meter"/> and renders them in the Prometheus text
/// exposition format (version 0.0.4): counters as <c>NAME_total</c>, up-down counters and gauges as
/// gauges. Observable instruments are read when rendering, and report their value as it is then.
/// Tags become labels; Passage's tags are aggregate by design (no addresses, no destinations).
/// </summary>
public sealed partial class PrometheusText : IDisposable
{
    /// <summary>What a metric or label name may hold besides a leading digit (see <see cref="Name"/>).</summary>
    private static readonly SearchValues<char> s_nameCharacters = SearchValues.Create("_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private readonly MeterListener _listener = new();
    private readonly Lock _renderLock = new();
    private readonly ConcurrentDictionary<Instrument, Family> _values = new();
    // Each metric family's name and the instrument that has it: the first published.
    private readonly ConcurrentDictionary<string, Instrument> _names = new(StringComparer.Ordinal);

    /// <summary>Starts collecting the instruments of <paramref name="meter"/>.</summary>
    public PrometheusText(Meter meter)
        : this(meter, NullLogger.Instance, [])
    {
    }

    /// <summary>
    /// Starts collecting the instruments of <paramref name="meter"/>, leaving out any whose name as a Prometheus metric family
    /// is in <paramref name="taken"/> (families rendered beside these) or is an earlier instrument's, each said once to
    /// <paramref name="logger"/>.
    /// </summary>
    /// <remarks>
    /// Two instruments can come to one name (<c>a.b</c> and <c>a_b</c>, a counter <c>a</c> and a gauge <c>a_total</c>), and
    /// two families of one name make the exposition invalid: a scraper refuses the whole page, every other figure with it.
    /// Not merged even where both have the same type: a series of one could have the same labels as one of the other.
    /// </remarks>
    internal PrometheusText(Meter meter, ILogger logger, IEnumerable<string> taken)
    {
        ArgumentNullException.ThrowIfNull(meter);
        ArgumentNullException.ThrowIfNull(logger);
        var reserved = taken.ToFrozenSet(StringComparer.Ordinal);
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter != meter || instrument is not (Counter<long> or UpDownCounter<long>
                or ObservableCounter<long> or ObservableGauge<long> or ObservableUpDownCounter<long>))
            {
                return;
            }
            var name = FamilyName(instrument);
            if (reserved.Contains(name) || !_names.TryAdd(name, instrument))
            {
                NameTaken(logger, instrument.Name, meter.Name, name, _names.TryGetValue(name, out var owner) ? owner.Name : "another family");
                return;
            }
            _values.TryAdd(instrument, new Family(name, instrument, new ConcurrentDictionary<string, long>(StringComparer.Ordinal)));
            listener.EnableMeasurementEvents(instrument);
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            if (!_values.TryGetValue(instrument, out var family))
            {
                return;
            }
            var labels = Labels(family, tags);
            if (instrument.IsObservable)
            {
                // A total (or a level) as of now, not an increment.
                family.Series[labels] = value;
            }
            else
            {
                family.Series.AddOrUpdate(labels, value, (_, old) => old + value);
            }
        });
        _listener.Start();
    }

    /// <summary>
    /// How the label set of a measurement's <paramref name="tags"/> is written in <paramref name="family"/>: as it was written
    /// the first time it came, in whichever order its tags come now, and each label name once (a tag whose name as a label,
    /// <see cref="Name"/>, an earlier tag's has already, <c>a.b</c> after <c>a_b</c> or one name given twice, gets <c>_2</c>,
    /// <c>_3</c>, ... after it). Two measurements of one label set whose tags came in two orders were two lines of one
    /// series, which a scraper keeps one of (the other's count lost), and a label name written twice made it refuse the
    /// whole page.
    /// </summary>
    private static string Labels(Family family, ReadOnlySpan<KeyValuePair<string, object?>> tags)
    {
        if (tags.IsEmpty)
        {
            return "";
        }
        var values = new string[tags.Length];
        var names = new HashSet<string>(StringComparer.Ordinal);
        var labels = new StringBuilder("{");
        for (var i = 0; i < tags.Length; i++)
        {
            values[i] = Convert.ToString(tags[i].Value, CultureInfo.InvariantCulture) ?? "";
            var name = Name(tags[i].Key);
            for (var n = 2; !names.Add(name); n++)
            {
                name = Name(tags[i].Key) + "_" + n.ToString(CultureInfo.InvariantCulture);
            }
            labels.Append(i == 0 ? "" : ",").Append(name).Append("=\"").Append(Escape(values[i])).Append('"');
        }
        var written = labels.Append('}').ToString();
        if (tags.Length == 1)
        {
            return written;
        }
        // The set whatever its order: each tag's name and value, sorted, each told by its length where it ends.
        var pairs = new (string Key, string Value)[tags.Length];
        for (var i = 0; i < tags.Length; i++)
        {
            pairs[i] = (tags[i].Key ?? "", values[i]);
        }
        var set = new StringBuilder();
        foreach (var (key, value) in pairs.OrderBy(t => t.Key, StringComparer.Ordinal).ThenBy(t => t.Value, StringComparer.Ordinal))
        {
            set.Append(key.Length).Append(':').Append(key).Append(value.Length).Append(':').Append(value);
        }
        return family.LabelSets.GetOrAdd(set.ToString(), written);
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
        // An observable instrument's series are those it reports now: one it no longer reports (a queue's depth, the queue
        // gone) is not shown at its last value for good. Only this render observes them, under its lock.
        foreach (var family in _values.Values)
        {
            if (family.Instrument.IsObservable)
            {
                family.Series.Clear();
            }
        }
        _listener.RecordObservableInstruments();
        var text = new StringBuilder();
        foreach (var (name, instrument, series) in _values.Values.OrderBy(f => f.Name, StringComparer.Ordinal))
        {
            text.Append("# HELP ").Append(name).Append(' ').Append(EscapeHelp(instrument.Description)).Append('\n');
            text.Append("# TYPE ").Append(name).Append(IsCounter(instrument) ? " counter\n" : " gauge\n");
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

    /// <summary>Whether <paramref name="instrument"/> is rendered as a counter (else a gauge).</summary>
    private static bool IsCounter(Instrument instrument) => instrument is Counter<long> or ObservableCounter<long>;

    /// <summary>
    /// The name of <paramref name="instrument"/>'s metric family: its name made a Prometheus name (<see cref="Name"/>), with
    /// <c>_bytes</c> for a count of bytes and <c>_total</c> for a counter.
    /// </summary>
    private static string FamilyName(Instrument instrument)
    {
        var name = Name(instrument.Name);
        if (instrument.Unit == "By" && !name.EndsWith("_bytes", StringComparison.Ordinal))
        {
            name += "_bytes";
        }
        return IsCounter(instrument) ? name + "_total" : name;
    }

    /// <summary>An instrument's figures, as one metric family: its name, the instrument, and its series by their labels.</summary>
    private sealed record Family(string Name, Instrument Instrument, ConcurrentDictionary<string, long> Series)
    {
        /// <summary>How each label set of more than one label is written, by the set whatever its order (see <see cref="Labels"/>).</summary>
        public ConcurrentDictionary<string, string> LabelSets { get; } = new(StringComparer.Ordinal);
    }

    [LoggerMessage(LogEvents.MetricNameTaken, LogLevel.Warning, "/metrics leaves out {Instrument} of meter {Meter}: its Prometheus name {Name} is {Owner}'s already, and a name shown twice makes scrapers refuse the whole page", EventName = "MetricNameTaken")]
    private static partial void NameTaken(ILogger logger, string instrument, string meter, string name, string owner);

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
