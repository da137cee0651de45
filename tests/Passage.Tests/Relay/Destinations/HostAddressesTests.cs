using System.Collections.Frozen;
using System.Net;
using System.Runtime.CompilerServices;
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
        var reads = new StrongBox<int>();
        var hosts = HeldOnTheSecondReading(time, rereading, release, s_after, reads);

        Assert.True(hosts.Holds(s_before));
        time.Advance(TimeSpan.FromSeconds(1));

        // The check that finds the reading old answers from it, without waiting for the next.
        Assert.True(await Task.Run(() => hosts.Holds(s_before)).WaitAsync(Timeouts.Default));
        Assert.True(rereading.Wait(Timeouts.Default));
        // Nor does a check while the interfaces are read again read them too.
        Assert.True(hosts.Holds(s_before));
        Assert.Equal(2, Volatile.Read(ref reads.Value));

        release.Set();
        await Timeouts.WaitUntilAsync(() => hosts.Holds(s_after));
        Assert.False(hosts.Holds(s_before));
        Assert.Equal(2, Volatile.Read(ref reads.Value));
    }

    /// <summary>
    /// A reading two seconds old is not used: no dial came for a while, and an address the host took meanwhile would be
    /// opened to the first one after the pause. That check reads the interfaces itself, and a check that comes while it
    /// does waits for that reading rather than answering from the old one or reading them too.
    /// </summary>
    [Fact]
    public async Task A_reading_too_old_to_use_is_read_again_by_the_check_that_finds_it()
    {
        var time = new ManualTimeProvider();
        using var rereading = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        var reads = new StrongBox<int>();
        var hosts = HeldOnTheSecondReading(time, rereading, release, s_after, reads);

        Assert.True(hosts.Holds(s_before));
        time.Advance(TimeSpan.FromSeconds(2));

        var first = Task.Run(() => hosts.Holds(s_after));
        Assert.True(rereading.Wait(Timeouts.Default));
        // The second check is let go only once it waits, or has answered: let go at once, it could come after the reading
        // and answer from it, whether or not a check waits.
        bool? secondHeld = null;
        var second = new Thread(() => secondHeld = hosts.Holds(s_before)) { IsBackground = true };
        second.Start();
        await Timeouts.WaitUntilAsync(() => !second.IsAlive || second.ThreadState.HasFlag(ThreadState.WaitSleepJoin));
        release.Set();

        // Both answer from the new reading, which was made once.
        Assert.True(await first.WaitAsync(Timeouts.Default));
        Assert.True(second.Join(Timeouts.Default));
        Assert.False(secondHeld);
        Assert.Equal(2, Volatile.Read(ref reads.Value));
    }

    /// <summary>
    /// A reading made off the dial path that ends after a check has read the interfaces itself is not kept: it began
    /// before, and what it found may be older.
    /// </summary>
    [Fact]
    public async Task A_slow_reading_off_the_dial_path_does_not_replace_a_newer_one()
    {
        var time = new ManualTimeProvider();
        using var rereading = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        // The second reading, off the dial path, is slow, and still finds the address before.
        var hosts = HeldOnTheSecondReading(time, rereading, release, s_before, new StrongBox<int>());

        Assert.True(hosts.Holds(s_before));
        time.Advance(TimeSpan.FromSeconds(1));
        Assert.True(hosts.Holds(s_before));
        Assert.True(rereading.Wait(Timeouts.Default));
        time.Advance(TimeSpan.FromSeconds(1));

        // This check reads them itself: the slow reading has not ended.
        Assert.True(hosts.Holds(s_after));
        Assert.True(hosts.Rereading);
        release.Set();
        await Timeouts.WaitUntilAsync(() => !hosts.Rereading);
        Assert.True(hosts.Holds(s_after));
        Assert.False(hosts.Holds(s_before));
    }

    /// <summary>
    /// Addresses whose first reading finds <see cref="s_before"/>; whose second sets <paramref name="rereading"/>, waits
    /// for <paramref name="release"/> and finds <paramref name="secondFinds"/>; and every later one <see cref="s_after"/>.
    /// The readings are counted in <paramref name="reads"/>.
    /// </summary>
    private static HostAddresses HeldOnTheSecondReading(
        TimeProvider time, ManualResetEventSlim rereading, ManualResetEventSlim release, IPAddress secondFinds, StrongBox<int> reads) =>
        new(
            () =>
            {
                switch (Interlocked.Increment(ref reads.Value))
                {
                    case 1:
                        return new[] { s_before }.ToFrozenSet();
                    case 2:
                        rereading.Set();
                        release.Wait(Timeouts.Default);
                        return new[] { secondFinds }.ToFrozenSet();
                    default:
                        return new[] { s_after }.ToFrozenSet();
                }
            },
            time);

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
