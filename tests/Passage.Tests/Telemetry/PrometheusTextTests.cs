using System.Diagnostics.Metrics;
using Passage.Telemetry;

namespace Passage.Tests.Telemetry;

/// <summary>The Prometheus rendering of a meter's instruments.</summary>
public sealed class PrometheusTextTests
{
    [Fact]
    public void Counters_add_up_while_observable_instruments_show_their_value_as_of_each_render()
    {
        using var meter = new Meter("Passage.Tests.Prometheus." + Guid.NewGuid().ToString("N"));
        using var text = new PrometheusText(meter);
        var level = 5L;
        var total = 100L;
        var counter = meter.CreateCounter<long>("test.sent", "By", "Bytes sent");
        meter.CreateObservableGauge("test.level", () => level, "{item}", "Items now");
        meter.CreateObservableCounter("test.total", () => new Measurement<long>(total, new KeyValuePair<string, object?>("kind", "a")), "{event}", "Events so far");

        counter.Add(3);
        counter.Add(4);
        var first = text.Render();
        Assert.Contains("# TYPE test_sent_bytes_total counter\ntest_sent_bytes_total 7\n", first);
        Assert.Contains("# TYPE test_level gauge\ntest_level 5\n", first);
        Assert.Contains("# TYPE test_total_total counter\ntest_total_total{kind=\"a\"} 100\n", first);

        // Observed again at the next render: the value then, not a sum of what each render saw.
        level = 2;
        total = 130;
        var second = text.Render();
        Assert.Contains("test_level 2\n", second);
        Assert.Contains("test_total_total{kind=\"a\"} 130\n", second);
        Assert.Contains("test_sent_bytes_total 7\n", second);
    }

    /// <summary>
    /// The admin listener serves any meter it is given, whose instruments and tags .NET lets be named with <c>-</c> or
    /// <c>/</c> and described over several lines. Each such name was written as it is, and a description's line feed ended
    /// its HELP line: either made the whole exposition unreadable to a scraper.
    /// </summary>
    [Fact]
    public void Names_are_made_valid_and_help_and_label_values_escaped()
    {
        using var meter = new Meter("Passage.Tests.Prometheus." + Guid.NewGuid().ToString("N"));
        using var text = new PrometheusText(meter);
        var counter = meter.CreateCounter<long>("test.request-duration/x", "{request}", "First line\nsecond line, a \\ in it");

        counter.Add(1, new KeyValuePair<string, object?>("http.route", "/a\"b\\c\nd"), new KeyValuePair<string, object?>("2xx", "yes"));

        Assert.Equal(
            "# HELP test_request_duration_x_total First line\\nsecond line, a \\\\ in it\n"
            + "# TYPE test_request_duration_x_total counter\n"
            + "test_request_duration_x_total{http_route=\"/a\\\"b\\\\c\\nd\",_2xx=\"yes\"} 1\n",
            text.Render());
    }
}
