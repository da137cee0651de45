using System.Collections.Frozen;
using System.Net;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

public sealed class HostAddressesTests
{
    private static readonly IPAddress s_before = IPAddress.Parse("192.0.2.1");
    private static readonly IPAddress s_after = IPAddress.Parse("192.0.2.2");

    /// <summary>
    /// A reading a second old is read again once, off the caller: the check that finds it old, and every other check while
    /// the interfaces are read, go on with the reading before, rather than each reading them on the dial path.
    /// </summary>
    [Fact]
    public async Task An_old_reading_is_read_again_once_and_off_the_dial_path()
    {
        var time = new ManualTimeProvider();
        using var rereading = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        int reads = 0;
        var hosts = new HostAddresses(
            () =>
            {
                switch (Interlocked.Increment(ref reads))
                {
                    case 1:
                        return new[] { s_before }.ToFrozenSet();
                    case 2:
                        rereading.Set();
                        release.Wait(Timeouts.Default);
                        return new[] { s_after }.ToFrozenSet();
                    default:
                        return new[] { s_after }.ToFrozenSet();
                }
            },
            time);

        Assert.True(hosts.Holds(s_before));
        time.Advance(TimeSpan.FromSeconds(1));

        // The check that finds the reading old answers from it, without waiting for the next.
        Assert.True(await Task.Run(() => hosts.Holds(s_before)).WaitAsync(Timeouts.Default));
        Assert.True(rereading.Wait(Timeouts.Default));
        // Nor does a check while the interfaces are read again read them too.
        Assert.True(hosts.Holds(s_before));
        Assert.Equal(2, Volatile.Read(ref reads));

        release.Set();
        await Timeouts.WaitUntilAsync(() => hosts.Holds(s_after));
        Assert.False(hosts.Holds(s_before));
        Assert.Equal(2, Volatile.Read(ref reads));
    }

    /// <summary>
    /// Until the interfaces could be read once, every address is held as this host's (a relay that cannot tell its own
    /// addresses must not open them), and every check tries again: a failed first reading is not kept for a second.
    /// </summary>
    [Fact]
    public void Until_a_first_reading_succeeds_every_address_is_held_and_each_check_reads_again()
    {
        var time = new ManualTimeProvider();
        int reads = 0;
        var hosts = new HostAddresses(
            () => Interlocked.Increment(ref reads) <= 2 ? null : new[] { s_before }.ToFrozenSet(),
            time);

        Assert.True(hosts.Holds(s_after));
        Assert.True(hosts.Holds(s_after));
        Assert.Equal(2, Volatile.Read(ref reads));

        // The third check reads them, with no time passed, and answers from that reading.
        Assert.False(hosts.Holds(s_after));
        Assert.True(hosts.Holds(s_before));
        Assert.Equal(3, Volatile.Read(ref reads));
    }
}
