using System.Diagnostics;
using Passage.Configuration;
using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Configuration;

/// <summary>
/// Files read at start or on change: anything but a regular file is refused before it is opened (a FIFO would hold the
/// reader until a writer came), sizes are bounded, and a file renamed over another is seen as new even when it keeps
/// the old one's length and time of last write.
/// </summary>
public sealed class InputFileTests : IDisposable
{
    private readonly TemporaryDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>Makes a FIFO with mkfifo(1), as an operator's mistake or a hostile configuration would.</summary>
    internal static string MakeFifo(string directory, string name)
    {
        string path = Path.Combine(directory, name);
        using var mkfifo = Process.Start(new ProcessStartInfo("mkfifo", [path]) { UseShellExecute = false })!;
        mkfifo.WaitForExit();
        Assert.Equal(0, mkfifo.ExitCode);
        return path;
    }

    [Fact]
    public async Task A_fifo_a_device_and_a_directory_are_refused_saying_what_they_are()
    {
        string fifo = MakeFifo(_directory.Path, "fifo");

        // Run aside: opening a FIFO would wait for a writer forever; the timeout turns that into a failure.
        var fifoError = await Task.Run(() => Assert.Throws<InputFileException>(() => InputFile.ReadAll(fifo, 1024))).WaitAsync(Timeouts.Default);
        Assert.Equal($"'{fifo}' is a FIFO (named pipe), not a regular file", fifoError.Message);

        var deviceError = await Task.Run(() => Assert.Throws<InputFileException>(() => InputFile.ReadAll("/dev/zero", 1024))).WaitAsync(Timeouts.Default);
        Assert.Equal("'/dev/zero' is a character device, not a regular file", deviceError.Message);

        var directoryError = Assert.Throws<InputFileException>(() => InputFile.ReadAll(_directory.Path, 1024));
        Assert.Equal($"'{_directory.Path}' is a directory, not a regular file", directoryError.Message);

        Assert.Throws<FileNotFoundException>(() => InputFile.ReadAll(Path.Combine(_directory.Path, "missing"), 1024));
        Assert.Equal(FileKind.Fifo, InputFile.Stat(fifo).Kind);
    }

    /// <summary>
    /// A path swapped for a FIFO after it was looked at and before it is opened: the open does not wait for a writer,
    /// and what was opened is refused for what it is.
    /// </summary>
    [Fact]
    public async Task A_file_swapped_for_a_fifo_before_it_is_opened_is_refused_without_waiting()
    {
        string path = _directory.Write("swapped", "content");
        var error = await Task.Run(() =>
        {
            InputFile.t_beforeOpen = opened =>
            {
                Assert.Equal(path, opened);
                File.Delete(path);
                MakeFifo(_directory.Path, "swapped");
            };
            try
            {
                return Assert.Throws<InputFileException>(() => InputFile.ReadAll(path, 1024));
            }
            finally
            {
                InputFile.t_beforeOpen = null;
            }
        }).WaitAsync(Timeouts.Default);
        Assert.Equal($"'{path}' is a FIFO (named pipe), not a regular file", error.Message);
    }

    [Fact]
    public void A_file_is_read_up_to_its_bound_and_refused_beyond_it()
    {
        string path = _directory.Write("exact", new string('x', 1000));
        Assert.Equal(1000, InputFile.ReadAll(path, 1000).Length);
        Assert.Empty(InputFile.ReadAll(_directory.Write("empty", ""), 0));

        var error = Assert.Throws<InputFileException>(() => InputFile.ReadAll(path, 999));
        Assert.Equal($"'{path}' is larger than 999 bytes", error.Message);
    }

    [Fact]
    public void A_link_is_followed_to_the_file_it_leads_to()
    {
        string target = _directory.Write("target", "content");
        string link = Path.Combine(_directory.Path, "link");
        File.CreateSymbolicLink(link, target);

        Assert.Equal(InputFile.Stat(target), InputFile.Stat(link));
        Assert.Equal("content"u8.ToArray(), InputFile.ReadAll(link, 100));
    }

    /// <summary>
    /// A file that cannot be opened for another reason than those with an exception of their own fails with the errno as
    /// the IOException's HResult, as the runtime's own file calls give it: SystemFile.TryRead tells EMFILE by it (a hosts
    /// file met while out of descriptors is not taken for a missing one), and its HResult was the generic I/O code.
    /// Shown with a link that leads to itself (ELOOP, 40).
    /// </summary>
    [Fact]
    public void A_file_that_cannot_be_opened_fails_with_its_errno()
    {
        var loop = Path.Combine(_directory.Path, "loop");
        File.CreateSymbolicLink(loop, loop);

        Assert.Equal(40, Assert.IsAssignableFrom<IOException>(Record.Exception(() => InputFile.ReadAll(loop, 1024))).HResult);
        Assert.True(SystemFile.TryRead(loop, out var text));
        Assert.Null(text);
    }

    [Fact]
    public void A_hosts_file_renamed_over_with_the_same_length_and_time_is_read_again()
    {
        string path = _directory.Write("hosts", "192.0.2.1 a.test\n");
        DateTime written = File.GetLastWriteTimeUtc(path);
        var hosts = new HostsFile(path);
        Assert.Equal("192.0.2.1", Assert.Single(hosts.Find("a.test")!).ToString());

        string aside = _directory.Write("hosts.new", "192.0.2.2 a.test\n");
        File.SetLastWriteTimeUtc(aside, written);
        File.Move(aside, path, overwrite: true);

        Assert.Equal("192.0.2.2", Assert.Single(hosts.Find("a.test")!).ToString());
    }

    [Fact]
    public async Task A_hosts_file_that_is_a_fifo_reads_as_empty_at_once()
    {
        string fifo = MakeFifo(_directory.Path, "hosts");
        var hosts = new HostsFile(fifo);

        Assert.Null(await Task.Run(() => hosts.Find("a.test")).WaitAsync(Timeouts.Default));
        Assert.Null(await Task.Run(() => SystemFile.ReadIfPresent(fifo)).WaitAsync(Timeouts.Default));
    }
    /// <summary>
    /// A time no DateTime holds (btrfs keeps 64-bit seconds: a file touched for the year 10000) is the nearest one that
    /// does: it threw out of Stat, and with it out of every lookup that checks hosts(5) or a token file for change.
    /// </summary>
    [Theory]
    [InlineData(long.MaxValue, 999_999_999u)]
    [InlineData(253_402_300_800L, 0u)]
    [InlineData(long.MinValue, 0u)]
    [InlineData(-62_135_596_801L, 0u)]
    public void A_time_beyond_what_DateTime_holds_is_the_nearest_it_can(long seconds, uint nanoseconds)
    {
        var timestamp = new byte[16];
        BitConverter.TryWriteBytes(timestamp, seconds);
        BitConverter.TryWriteBytes(timestamp.AsSpan(8), nanoseconds);
        var time = InputFile.TimeAt(timestamp);
        Assert.True(seconds > 0 ? time.Year == 9999 : time.Year == 1, time.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void A_time_within_range_is_read_to_the_tick()
    {
        var timestamp = new byte[16];
        BitConverter.TryWriteBytes(timestamp, 1_700_000_000L);
        BitConverter.TryWriteBytes(timestamp.AsSpan(8), 123_456_700u);
        Assert.Equal(DateTime.UnixEpoch.AddSeconds(1_700_000_000).AddTicks(1_234_567), InputFile.TimeAt(timestamp));
    }
}
