using Passage.Configuration;

namespace Passage.Tests.Configuration;

public sealed class DurationTests
{
    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("1.5s", 1500)]
    [InlineData("1.1s", 1100)]
    [InlineData("0.001s", 1)]
    [InlineData("5m", 300_000)]
    [InlineData("2h", 7_200_000)]
    [InlineData(" 1d ", 86_400_000)]
    [InlineData("30d", 2_592_000_000)]
    [InlineData("0", 0)]
    [InlineData("0.0", 0)]
    public void Reads_the_forms_operators_write(string text, long milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("5x")]
    [InlineData("s")]
    [InlineData("-5s")]
    [InlineData("5 seconds")]
    [InlineData("1e3")]
    [InlineData("400d")]
    [InlineData("31d")]
    [InlineData("50d")]
    [InlineData(null)]
    [InlineData("0.5ms")] // no timer runs it: it was as good as 0, and printed back as "0ms"
    [InlineData("1.0005s")]
    [InlineData("1500")] // milliseconds to some (HAProxy), seconds to others (nginx, systemd)
    [InlineData("5")]
    [InlineData(" 300 ")]
    public void Refuses_anything_else_rather_than_reading_it_as_zero(string? text) =>
        Assert.False(Duration.TryParse(text, out _));

    /// <summary>Where a format reads a bare number as milliseconds (the tunnel's settings, as ptproxy's), it is so read.</summary>
    [Theory]
    [InlineData("1500", 1500)]
    [InlineData("5", 5)]
    [InlineData("30s", 30_000)]
    public void A_bare_number_is_milliseconds_where_asked(string text, long milliseconds)
    {
        Assert.True(Duration.TryParse(text, out var value, bareMilliseconds: true));
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
    }

    [Fact]
    public void Infinite_is_spelled_out() =>
        Assert.True(Duration.TryParse("infinite", out var value) && value == Timeout.InfiniteTimeSpan);

    [Theory]
    [InlineData(250)]
    [InlineData(5000)]
    [InlineData(90_000)]
    [InlineData(3_600_000)]
    public void Formatting_reads_back_to_the_same_value(long milliseconds)
    {
        var value = TimeSpan.FromMilliseconds(milliseconds);
        Assert.True(Duration.TryParse(Duration.Format(value), out var back));
        Assert.Equal(value, back);
    }
}
