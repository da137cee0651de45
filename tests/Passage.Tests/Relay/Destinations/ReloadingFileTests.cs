using Passage.Relay.Destinations;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Destinations;

public sealed class ReloadingFileTests
{
    /// <summary>
    /// A change met while the process is short of descriptors is not read: what the file said stands, and the change is
    /// read at the first use with room. It was read as a missing file (the open failed) and that stood until the file
    /// changed again: a relay out of descriptors for a moment forgot its hosts file or its name servers for good.
    /// </summary>
    [Fact]
    public void A_change_met_while_short_of_descriptors_keeps_what_the_file_said_until_there_is_room()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.Write("hosts", "first");
        var short_ = false;
        var reads = new List<string?>();
        var file = new ReloadingFile<string?>(path, text =>
        {
            reads.Add(text);
            return text;
        }, () => short_);
        Assert.Equal("first", file.Current);

        File.WriteAllText(path, "second, longer");
        short_ = true;
        Assert.Equal("first", file.Current);
        Assert.Equal("first", file.Current);
        Assert.Equal(["first"], reads);

        short_ = false;
        Assert.Equal("second, longer", file.Current);
        Assert.Equal("second, longer", file.Current);
        Assert.Equal(["first", "second, longer"], reads);
    }

    /// <summary>A file removed reads as missing whatever the descriptors: nothing needs opening to know it is gone.</summary>
    [Fact]
    public void A_file_removed_reads_as_missing_even_when_short_of_descriptors()
    {
        using var directory = new TemporaryDirectory();
        var path = directory.Write("hosts", "first");
        var file = new ReloadingFile<string?>(path, text => text, () => true);
        Assert.Equal("first", file.Current);

        File.Delete(path);
        Assert.Null(file.Current);
    }
}
