using System.Net.Sockets;
using System.Text;
using Passage.Client.HttpProxy;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>Heads read from a real socket, however the writes fall.</summary>
public sealed class HeadReaderTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task Empty_lines_before_a_request_line_are_passed_over(int writeSize)
    {
        const string head = "GET / HTTP/1.1\r\nA: b\r\n\r\n";
        var result = await ReadAsync("\r\n\r\n" + head + "body", writeSize, skipEmptyLines: true);
        Assert.Equal((HeadReader.Outcome.Whole, 4, 4 + head.Length), (result.Outcome, result.Start, result.End));
    }

    [Fact]
    public async Task Empty_lines_count_towards_the_size()
    {
        var result = await ReadAsync(string.Concat(Enumerable.Repeat("\r\n", 600)) + "GET / HTTP/1.1\r\n\r\n", 4096, skipEmptyLines: true, size: 1024);
        Assert.Equal(HeadReader.Outcome.TooLarge, result.Outcome);
    }

    [Theory]
    [InlineData("\r\n\nGET / HTTP/1.1\r\n\r\n")]
    [InlineData("\nGET / HTTP/1.1\r\n\r\n")]
    [InlineData("\r\nGET / HTTP/1.1\n\r\n")]
    public async Task A_bare_lf_among_or_after_the_empty_lines_is_found(string sent)
    {
        var result = await ReadAsync(sent, 1, skipEmptyLines: true);
        Assert.Equal(HeadReader.Outcome.BareLf, result.Outcome);
    }

    [Fact]
    public async Task Without_skipping_an_empty_line_is_a_whole_empty_head()
    {
        var result = await ReadAsync("\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 4096, skipEmptyLines: false);
        Assert.Equal((HeadReader.Outcome.Whole, 0, 4), (result.Outcome, result.Start, result.End));
    }

    private static async Task<HeadReader.Result> ReadAsync(string sent, int writeSize, bool skipEmptyLines, int size = 16 * 1024)
    {
        var (writer, reader) = await Loopback.ConnectedPairAsync();
        using var _ = writer;
        await using var from = new SocketConnection(reader);
        var writing = PieceByPiece.WriteAsync(writer, sent, writeSize);
        var result = await HeadReader.ReadAsync(from, new byte[size], 0, size, skipEmptyLines, default).AsTask().WaitAsync(Timeouts.Default);
        await writing.WaitAsync(Timeouts.Default);
        return result;
    }
}
