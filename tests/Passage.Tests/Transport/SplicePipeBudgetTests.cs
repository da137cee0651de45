using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// How many bytes of pipes may be larger than the kernel's default, and how large each new one is asked to be.
/// The kernel charges an unprivileged user's pipes against fs.pipe-user-pages-soft and past it gives new pipes
/// two pages, and a full pipe's pages are counted nowhere else: large pipes keep within a quarter of that limit,
/// for every process, and come smaller as that share fills.
/// </summary>
public sealed class SplicePipeBudgetTests
{
    private const long Mib = 1024 * 1024;

    [Theory]
    [InlineData(false, "16384", 4096, 16 * Mib)]
    [InlineData(false, "1024", 4096, 1 * Mib)]
    [InlineData(false, "16384", 65536, 256 * Mib)]
    [InlineData(true, "65536", 4096, 64 * Mib)]
    // A limit too large to count in bytes does not wrap around.
    [InlineData(false, "9223372036854775807", 4096, long.MaxValue / 4)]
    [InlineData(true, "4611686018427387904", 65536, long.MaxValue / 4)]
    [InlineData(false, "18446744073709551615", 4096, long.MaxValue / 4)]
    // No kernel limit (0, or a privileged process that cannot read it): a quarter of the kernel's default limit.
    [InlineData(false, "0", 4096, 16 * Mib)]
    [InlineData(true, "16384", 4096, 16 * Mib)]
    [InlineData(true, "0", 4096, 16 * Mib)]
    [InlineData(true, null, 4096, 16 * Mib)]
    // An unprivileged process that cannot read its limit asks for no large pipe: the kernel may refuse it anyway.
    [InlineData(false, null, 4096, 0L)]
    [InlineData(false, "", 4096, 0L)]
    [InlineData(false, "-5", 4096, 0L)]
    [InlineData(false, "lots", 4096, 0L)]
    public void Large_pipes_keep_within_a_quarter_of_the_users_pipe_quota(bool privileged, string? softLimitPages, int pageSize, long expected)
    {
        Assert.Equal(expected, SplicePipe.LargePipeBudget(privileged, softLimitPages, pageSize));
    }

    [Theory]
    [InlineData(1024 * 1024, 0L, 16 * Mib, 1024 * 1024)]
    [InlineData(1024 * 1024, 8 * Mib, 16 * Mib, 1024 * 1024)]
    [InlineData(1024 * 1024, 9 * Mib, 16 * Mib, 512 * 1024)]
    [InlineData(1024 * 1024, 15 * Mib, 16 * Mib, 128 * 1024)]
    [InlineData(1024 * 1024, 16 * Mib - 128 * 1024, 16 * Mib, 128 * 1024)]
    [InlineData(1024 * 1024, 16 * Mib - 100 * 1024, 16 * Mib, 0)]
    [InlineData(1024 * 1024, 17 * Mib, 16 * Mib, 0)]
    [InlineData(1024 * 1024, 0L, 0L, 0)]
    [InlineData(64 * 1024, 0L, 16 * Mib, 0)]
    [InlineData(1024 * 1024, 1L << 40, long.MaxValue, 1024 * 1024)]
    public void A_new_pipe_is_asked_for_less_as_the_budget_fills(int wanted, long openBytes, long budget, int expected)
    {
        Assert.Equal(expected, SplicePipe.LargeSize(wanted, openBytes, budget));
    }

    [Fact]
    public void Filling_the_default_budget_gives_the_first_pipes_the_full_size_and_more_pipes_a_large_size_in_all()
    {
        var sizes = new List<int>();
        long open = 0;
        while (SplicePipe.LargeSize(1024 * 1024, open, 16 * Mib) is var size and > 0)
        {
            sizes.Add(size);
            open += size;
        }
        Assert.Equal(16 * Mib, open);
        Assert.Equal(9, sizes.TakeWhile(size => size == 1024 * 1024).Count());
        Assert.Equal([1024 * 1024, 512 * 1024, 256 * 1024, 128 * 1024], sizes.Distinct());
        Assert.Equal(37, sizes.Count);
    }
}
