using System.Diagnostics.Metrics;
using System.Net;
using Passage.Client;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

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

    /// <summary>
    /// An observable instrument shows the series it reports as of each render, and no other: a series it no longer reports
    /// (a queue's depth, the queue gone) used to be shown at its last value on every page after.
    /// </summary>
    [Fact]
    public void A_series_an_observable_instrument_no_longer_reports_is_not_shown()
    {
        using var meter = new Meter("Passage.Tests.Prometheus." + Guid.NewGuid().ToString("N"));
        using var text = new PrometheusText(meter);
        var queues = new Dictionary<string, long> { ["a"] = 3, ["b"] = 7 };
        meter.CreateObservableGauge("test.depth", () => queues.Select(q => new Measurement<long>(q.Value, new KeyValuePair<string, object?>("queue", q.Key))).ToList(), "{item}", "Items queued");

        var first = text.Render();
        Assert.Contains("test_depth{queue=\"a\"} 3\n", first);
        Assert.Contains("test_depth{queue=\"b\"} 7\n", first);

        queues.Remove("b");
        queues["a"] = 4;
        var second = text.Render();
        Assert.Contains("test_depth{queue=\"a\"} 4\n", second);
        Assert.DoesNotContain("queue=\"b\"", second);
    }

    /// <summary>
    /// A meter given to the admin listener may count one label set with its tags in either order, and may give tags whose
    /// names become one label name (<c>a.b</c> and <c>a_b</c>, or a name twice). Each order was written as a series of its
    /// own, two lines of one series of which a scraper keeps one (the other's counts lost), and a label name written twice
    /// made the scraper refuse the whole page. One label set is one series, written as it first came, and no label name
    /// is written twice on a line.
    /// </summary>
    [Fact]
    public void A_label_set_is_one_series_whatever_the_order_of_its_tags_and_no_label_name_is_written_twice()
    {
        using var meter = new Meter("Passage.Tests.Prometheus." + Guid.NewGuid().ToString("N"));
        using var text = new PrometheusText(meter);
        var counter = meter.CreateCounter<long>("test.c", "{item}", "a counter");
        var calls = 0L;
        meter.CreateObservableCounter("test.o", () => new Measurement<long>(++calls, new KeyValuePair<string, object?>(calls % 2 == 0 ? "b" : "a", "x"), new KeyValuePair<string, object?>(calls % 2 == 0 ? "a" : "b", "x")), "{item}", "observed");

        counter.Add(1, new KeyValuePair<string, object?>("outcome", "refused"), new KeyValuePair<string, object?>("error", "other"));
        counter.Add(2, new KeyValuePair<string, object?>("error", "other"), new KeyValuePair<string, object?>("outcome", "refused"));
        counter.Add(4, new KeyValuePair<string, object?>("k.a", "1"), new KeyValuePair<string, object?>("k_a", "2"), new KeyValuePair<string, object?>("k_a", "3"));
        text.Render();
        var page = text.Render();

        Assert.Contains("test_c_total{outcome=\"refused\",error=\"other\"} 3\n", page);
        Assert.DoesNotContain("{error=", page);
        Assert.Contains("test_c_total{k_a=\"1\",k_a_2=\"2\",k_a_3=\"3\"} 4\n", page);
        Assert.Contains("test_o_total{a=\"x\",b=\"x\"} 2\n", page);
        Assert.DoesNotContain("{b=", page);
    }

    /// <summary>
    /// Instruments whose names become one Prometheus name (<c>a.b</c> and <c>a_b</c>; a counter <c>c</c> and a gauge
    /// <c>c_total</c>; one named as a process figure) were each written as a family of that name, and a page with two families
    /// of one name is refused whole by a scraper. The first keeps the name, and each one left out is said once.
    /// </summary>
    [Fact]
    public async Task Instruments_that_come_to_one_name_show_once_and_each_one_left_out_is_said_once()
    {
        using var meter = new Meter("Passage.Tests.Prometheus." + Guid.NewGuid().ToString("N"));
        var first = meter.CreateCounter<long>("test.a.b", "{item}", "first");
        var second = meter.CreateCounter<long>("test.a_b", "{item}", "second");
        var counter = meter.CreateCounter<long>("test.c", "{item}", "a counter");
        var log = new RecordingLogger();
        using var loggers = log.Factory();
        await using var admin = await AdminServer.StartAsync(new IPEndPoint(IPAddress.Loopback, 0), meter, () => null, loggers);
        first.Add(1);
        second.Add(2);
        counter.Add(3);
        // After the listener began: published to it as they are created.
        meter.CreateObservableGauge("test.c_total", () => 4L, "{item}", "a gauge");
        meter.CreateObservableGauge("process.open_fds", () => 5L, "{descriptor}", "not the process's");
        using var http = new HttpClient { BaseAddress = new Uri($"http://{admin.LocalEndpoint}"), Timeout = Timeouts.Default };

        var page = await http.GetStringAsync("/metrics");
        await http.GetStringAsync("/metrics");

        var families = page.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToList();
        Assert.Equal(families.Distinct().Count(), families.Count);
        Assert.Contains("# HELP test_a_b_total first\n# TYPE test_a_b_total counter\ntest_a_b_total 1\n", page);
        Assert.Contains("# TYPE test_c_total counter\ntest_c_total 3\n", page);
        Assert.DoesNotContain("process_open_fds 5\n", page);
        var left = log.Named("MetricNameTaken").Select(e => e.Message).ToList();
        Assert.Equal(3, left.Count);
        Assert.Contains(left, m => m.Contains("test.a_b of meter", StringComparison.Ordinal) && m.Contains("is test.a.b's already", StringComparison.Ordinal));
        Assert.Contains(left, m => m.Contains("test.c_total of meter", StringComparison.Ordinal) && m.Contains("is test.c's already", StringComparison.Ordinal));
        Assert.Contains(left, m => m.Contains("process.open_fds of meter", StringComparison.Ordinal));
    }

    /// <summary>Each of Passage's own meters, and the process figures after it, make a page where no name is given twice.</summary>
    [Fact]
    public void Passages_own_instruments_and_the_process_figures_never_share_a_name()
    {
        using var relay = new RelayMetrics();
        using var client = new ClientMetrics(() => new RelayStates(1, 0, 0));
        using var tunnel = new TunnelMetrics();
        foreach (var meter in new[] { relay.Meter, client.Meter, tunnel.Meter })
        {
            var log = new RecordingLogger();
            using var text = new PrometheusText(meter, log, ProcessMetrics.Names);
            var page = text.Render() + ProcessMetrics.Render();

            Assert.Empty(log.Named("MetricNameTaken"));
            var families = page.Split('\n').Where(l => l.StartsWith("# TYPE ", StringComparison.Ordinal)).Select(l => l.Split(' ')[2]).ToList();
            Assert.Equal(families.Distinct().Count(), families.Count);
            Assert.Contains(families, f => f.StartsWith("passage_", StringComparison.Ordinal));
        }
    }
}
