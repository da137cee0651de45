using System.Globalization;
using System.Net;

namespace Passage.Tests.Infrastructure;

/// <summary>A scraper of a <c>passage</c> process's admin listener: its <c>/metrics</c> and <c>/healthz</c>.</summary>
internal sealed class AdminScraper : IDisposable
{
    private readonly HttpClient _http;

    private AdminScraper(int port) => _http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}"), Timeout = Timeouts.Default };

    /// <summary>For the admin listener <paramref name="process"/> says it listens on (127.0.0.1).</summary>
    public static async Task<AdminScraper> ForAsync(PassageProcess process) => new(await process.WaitForAdminPortAsync());

    public Task<string> MetricsAsync() => _http.GetStringAsync("/metrics");

    public async Task<(HttpStatusCode Status, string Body)> HealthAsync()
    {
        using var answer = await _http.GetAsync("/healthz");
        return (answer.StatusCode, await answer.Content.ReadAsStringAsync());
    }

    /// <summary>The value of <paramref name="series"/> (name and labels, as written) in <paramref name="metrics"/>, or null when it is not there.</summary>
    public static long? Value(string metrics, string series)
    {
        foreach (var line in metrics.Split('\n'))
        {
            if (line.StartsWith(series + " ", StringComparison.Ordinal))
            {
                return long.Parse(line[(series.Length + 1)..], CultureInfo.InvariantCulture);
            }
        }
        return null;
    }

    /// <summary>Scrapes until <paramref name="condition"/> holds of what <c>/metrics</c> says (see <see cref="Timeouts.WaitUntilAsync(Func{bool}, Func{string})"/>); returns that.</summary>
    public async Task<string> MetricsWhenAsync(Func<string, bool> condition)
    {
        var seen = "";
        await Timeouts.WaitUntilAsync(() => condition(seen = MetricsAsync().GetAwaiter().GetResult()), () => seen);
        return seen;
    }

    /// <summary>Asks <c>/healthz</c> until it answers <paramref name="status"/>; returns its body.</summary>
    public async Task<string> HealthWhenAsync(HttpStatusCode status)
    {
        var seen = (Status: (HttpStatusCode)0, Body: "");
        await Timeouts.WaitUntilAsync(() => (seen = HealthAsync().GetAwaiter().GetResult()).Status == status, () => seen.ToString());
        return seen.Body;
    }

    public void Dispose() => _http.Dispose();
}
