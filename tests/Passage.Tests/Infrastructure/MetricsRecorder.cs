using System.Diagnostics.Metrics;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// Sums the long-valued measurements of one meter instance by instrument name and the tags
/// <c>reason</c>, <c>end</c>, <c>direction</c> and <c>result</c>, as "name/tag": "passage.relay.connections.refused/no_route".
/// </summary>
internal sealed class MetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _sums = new();

    public MetricsRecorder(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == meter)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name;
            foreach (var tag in tags)
            {
                if (tag.Key is "reason" or "end" or "direction" or "result")
                {
                    key += $"/{tag.Value}";
                }
            }
            lock (_sums)
            {
                _sums[key] = _sums.GetValueOrDefault(key) + value;
            }
        });
        _listener.Start();
    }

    /// <summary>The sum so far for <paramref name="key"/>.</summary>
    public long this[string key]
    {
        get
        {
            lock (_sums)
            {
                return _sums.GetValueOrDefault(key);
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
