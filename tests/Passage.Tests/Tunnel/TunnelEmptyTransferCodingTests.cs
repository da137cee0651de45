namespace Passage.Tests.Tunnel;

/// <summary>
/// A backend answer whose Transfer-Encoding names no coding at all, beside a Content-Length. The field's presence means
/// the length is not the Content-Length's (RFC 9112 §6.3: the body then runs to the close), while the pooled way to the
/// backend went by the Content-Length: the same answer reached the application as "abc" on one way and "abcEXTRA" on the
/// other (the one a request with trailers takes). Framed two ways by one intermediary, it is refused: 502 on both.
/// </summary>
public sealed class TunnelEmptyTransferCodingTests
{
    [Theory]
    [InlineData("GET /empty HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")]
    [InlineData("POST /empty HTTP/1.1\r\nHost: app.test\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n")]
    public async Task An_answer_whose_transfer_encoding_names_no_coding_gets_502_on_either_way(string request)
    {
        var answer = await TunnelChunkedTwiceTests.AnswerRefusedAsync(new Dictionary<string, string>
        {
            ["/empty"] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: \r\nContent-Length: 3\r\n\r\nabcEXTRA",
        }, request, "the answer's Transfer-Encoding names no coding");
        Assert.DoesNotContain("abc", answer, StringComparison.Ordinal);
    }
}
