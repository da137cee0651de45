using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// How many bytes of pipes may be larger than the kernel's default: the kernel charges an unprivileged user's
/// pipes against fs.pipe-user-pages-soft, and past it gives new pipes two pages, so large pipes keep within
/// a quarter of it.
/// </summary>
public sealed class SplicePipeBudgetTests
{
    [Theory]
    [InlineData(false, "16384", 4096, 16L * 1024 * 1024)]
    [InlineData(false, "1024", 4096, 1L * 1024 * 1024)]
    [InlineData(false, "16384", 65536, 256L * 1024 * 1024)]
    [InlineData(false, "0", 4096, long.MaxValue)]
    [InlineData(true, "16384", 4096, long.MaxValue)]
    [InlineData(true, null, 4096, long.MaxValue)]
    [InlineData(false, null, 4096, 0L)]
    [InlineData(false, "", 4096, 0L)]
    [InlineData(false, "-5", 4096, 0L)]
    [InlineData(false, "lots", 4096, 0L)]
    public void Large_pipes_keep_within_a_quarter_of_the_users_pipe_quota(bool privileged, string? softLimitPages, int pageSize, long expected)
    {
        Assert.Equal(expected, SplicePipe.LargePipeBudget(privileged, softLimitPages, pageSize));
    }
}
