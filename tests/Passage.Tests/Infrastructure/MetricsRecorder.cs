using System.Diagnostics.Metrics;

namespace Passage.Tests.Infrastructure;

/// <summary>
/// Sums the long-valued measurements of one meter instance (observable instruments: their latest value, read when asked) by instrument name and the tags
/// <c>reason</c>, <c>end</c>, <c>direction</c> and <c>result</c>, as "name/tag": "passage.relay.connections.refused/no_route".
/// </summary>
internal sealed class MetricsRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _sums = new();
    private readonly HashSet<string> _frontDoors = new();
    private readonly Dictionary<(string Instrument, string FrontDoor), long> _byFrontDoor = new();

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
            string? frontDoor = null;
            foreach (var tag in tags)
            {
                if (tag.Key is "reason" or "end" or "direction" or "result")
                {
                    key += $"/{tag.Value}";
                }
                else if (tag.Key == "front_door")
                {
                    frontDoor = tag.Value as string;
                }
            }
            lock (_sums)
            {
                // An observable counter reports its running total each time it is read: the latest is the sum.
                _sums[key] = instrument.IsObservable ? value : _sums.GetValueOrDefault(key) + value;
                if (frontDoor is not null)
                {
                    _frontDoors.Add(frontDoor);
                    if (!instrument.IsObservable)
                    {
                        _byFrontDoor[(instrument.Name, frontDoor)] = _byFrontDoor.GetValueOrDefault((instrument.Name, frontDoor)) + value;
                    }
                }
            }
        });
        _listener.Start();
    }

    /// <summary>The sum so far for <paramref name="key"/>.</summary>
    public long this[string key]
    {
        get
        {
            _listener.RecordObservableInstruments();
            lock (_sums)
            {
                return _sums.GetValueOrDefault(key);
            }
        }
    }

    /// <summary>The sum so far of <paramref name="instrument"/> over all its tags ("name" and every "name/...").</summary>
    public long Total(string instrument)
    {
        _listener.RecordObservableInstruments();
        lock (_sums)
        {
            return _sums.Where(s => s.Key == instrument || s.Key.StartsWith(instrument + "/", StringComparison.Ordinal)).Sum(s => s.Value);
        }
    }

    /// <summary>The sum so far of <paramref name="instrument"/> (not an observable one) over the measurements tagged <c>front_door</c> <paramref name="frontDoor"/>.</summary>
    public long Total(string instrument, string frontDoor)
    {
        lock (_sums)
        {
            return _byFrontDoor.GetValueOrDefault((instrument, frontDoor));
        }
    }

    /// <summary>Every <c>front_door</c> tag value measured so far.</summary>
    public IReadOnlyCollection<string> FrontDoors
    {
        get
        {
            lock (_sums)
            {
                return [.. _frontDoors];
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
