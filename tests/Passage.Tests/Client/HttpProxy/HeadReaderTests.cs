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

    /// <summary>
    /// A control character in the first line (a SOCKS greeting, a TLS ClientHello, sent to the HTTP proxy by mistake) is
    /// found as soon as it is read: its sender waits for an answer, and would wait as long as this reader for a head's end.
    /// </summary>
    [Theory]
    [InlineData("\u0005\u0001\u0000", 0)]
    [InlineData("\u0016\u0003\u0001\u0002\u0000\u0001", 0)]
    [InlineData("\r\nGET / HTTP/1.1\u0000", 16)]
    [InlineData("HTTP/1.1 200 O\u007fK", 14)]
    public async Task A_control_character_in_the_first_line_is_found_without_waiting_for_the_heads_end(string sent, int at)
    {
        var result = await ReadAsync(sent, 1, skipEmptyLines: true);
        Assert.Equal((HeadReader.Outcome.NotHttp, at), (result.Outcome, result.End));
    }

    /// <summary>HTAB and obs-text may be in a status line's reason phrase, and control characters in later lines are the parser's to refuse.</summary>
    [Theory]
    [InlineData("HTTP/1.1 200 O\tK\u00e9\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nX-A: a\u0001b\r\n\r\n")]
    public async Task What_is_no_control_character_of_the_first_line_is_read_to_the_heads_end(string sent)
    {
        var result = await ReadAsync(sent, 1, skipEmptyLines: false);
        Assert.Equal((HeadReader.Outcome.Whole, sent.Length), (result.Outcome, result.End));
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
