using System.Net.Sockets;
using System.Text;
using Passage.Client.HttpProxy;
using Passage.Relay;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>
/// The origin's answer as the application gets it, read from a real socket however the origin's writes fall: its heads
/// without this hop's fields, the final one saying Connection: close, its body byte for byte, and then its end.
/// </summary>
public sealed class OriginAnswerConnectionTests
{
    /// <summary>What an origin that keeps its connection open sends after its answer: never the application's.</summary>
    private const string After = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra";

    private const string Get11 = "GET http://origin.test/ HTTP/1.1";

    private const string Get10 = "GET http://origin.test/ HTTP/1.0";

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task Hop_by_hop_fields_go_connection_close_comes_and_the_answer_ends_at_its_length(int writeSize)
    {
        var (read, refusal) = await ReadAnswerAsync(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\nProxy-Authenticate: Basic realm=\"x\"\r\n"
            + "Proxy-Connection: keep-alive\r\nUpgrade: h2c\r\nContent-Length: 2\r\nX-End:  \u00e9 \r\n\r\nok" + After, writeSize, close: false);
        Assert.Null(refusal);
        Assert.Equal("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-End:  \u00e9 \r\nConnection: close\r\n\r\nok", read);
    }

    /// <summary>
    /// RFC 9110 §8.6: Content-Length given twice, or as a list, with one value is read as that value, and then goes on as
    /// one Content-Length of it, as the request's does. It went on as it came: an application whose parser refuses repeated
    /// or listed values (Node's refuses two lines, Go's a list) failed on an answer this proxy had taken as well framed.
    /// An answer whose Content-Length frames no body (to HEAD, a 304) keeps its lines as they came.
    /// </summary>
    [Theory]
    [InlineData("GET", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: 1\r\nConnection: close\r\n\r\nok")]
    [InlineData("GET", "HTTP/1.1 200 OK\r\nContent-Length: 2, 02\r\n\r\nok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")]
    [InlineData("HEAD", "HTTP/1.1 200 OK\r\nContent-Length: 9, 9\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 9, 9\r\nConnection: close\r\n\r\n")]
    public async Task Content_length_read_as_one_value_goes_on_as_one(string method, string answer, string expected)
    {
        var (read, refusal) = await ReadAnswerAsync(answer + After, 4096, close: false, $"{method} http://origin.test/ HTTP/1.1");
        Assert.Null(refusal);
        Assert.Equal(expected, read);
    }

    /// <summary>RFC 9110 §15.2: interim answers (100 Continue, 103 Early Hints) precede the final one and go on as they are.</summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task Interim_answers_go_on_before_the_final_one(int writeSize)
    {
        var (read, refusal) = await ReadAnswerAsync(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\nConnection: X-A\r\nX-A: 1\r\n\r\n"
            + "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\nKeep-Alive: 1\r\n\r\n" + After, writeSize, close: false);
        Assert.Null(refusal);
        Assert.Equal(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", read);
    }

    /// <summary>Up to <see cref="OriginAnswerConnection.MaxInterim"/> interim answers go on before the final one (none to HTTP/1.0).</summary>
    [Theory]
    [InlineData(Get11)]
    [InlineData(Get10)]
    public async Task Interim_answers_up_to_the_bound_go_on_before_the_final_one(string requestLine)
    {
        var interim = string.Concat(Enumerable.Repeat("HTTP/1.1 102 Processing\r\n\r\n", OriginAnswerConnection.MaxInterim));
        var (read, refusal) = await ReadAnswerAsync(interim + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" + After, 4096, close: false, requestLine);
        Assert.Null(refusal);
        Assert.Equal((requestLine == Get11 ? interim : "") + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", read);
    }

    /// <summary>
    /// An origin that sends interim answers without end (and never closes) is answered for past the bound: a 502 behind
    /// those that went on, and the answer's end, rather than a connection held until the idle timeout.
    /// </summary>
    [Theory]
    [InlineData(Get11)]
    [InlineData(Get10)]
    public async Task More_interim_answers_than_the_bound_are_a_502_and_the_answer_ends(string requestLine)
    {
        const string interim = "HTTP/1.1 102 Processing\r\n\r\n";
        var (read, refusal) = await ReadAnswerAsync(string.Concat(Enumerable.Repeat(interim, 100)), 4096, close: false, requestLine);
        Assert.Equal(RefusalReason.OriginBadAnswer, refusal);
        var passed = requestLine == Get11 ? string.Concat(Enumerable.Repeat(interim, OriginAnswerConnection.MaxInterim)) : "";
        Assert.StartsWith(passed + "HTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=http_protocol_error; ", read);
        Assert.Contains($"the origin sent more than {OriginAnswerConnection.MaxInterim} interim (1xx) answers", read);
    }

    /// <summary>RFC 9110 §6.6.2: a chunked answer's Trailer field goes on, as the trailer fields it announces do.</summary>
    [Fact]
    public async Task A_chunked_answer_s_trailer_field_goes_on_with_its_trailer_fields()
    {
        var (read, refusal) = await ReadAnswerAsync(
            "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n" + After, 5, close: false);
        Assert.Null(refusal);
        Assert.Equal(
            "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\nX-Sum: 1\r\n\r\n", read);
    }

    /// <summary>
    /// RFC 9110 §6.5.1: fields that frame, route, authenticate or describe the answer are not taken from its trailer
    /// section (an application that merged them would take a Set-Cookie or a Content-Length the head never had); the
    /// fields a trailer section may carry go on, and the framing stays whole.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task Fields_no_trailer_section_may_carry_are_cut_out_of_the_answer_s(int writeSize)
    {
        var (read, refusal) = await ReadAnswerAsync(
            "HTTP/1.1 200 OK\r\nTrailer: X-Sum, Server-Timing\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
            + "Content-Length: 9\r\nX-Sum: 1\r\nTransfer-Encoding: chunked\r\nset-cookie: session=1\r\nHost: other.test\r\n"
            + "WWW-Authenticate: Basic\r\nLocation: /elsewhere\r\nTrailer: X-More\r\nContent-Type: text/html\r\nServer-Timing: db;dur=5\r\n\r\n"
            + After, writeSize, close: false);
        Assert.Null(refusal);
        Assert.Equal(
            "HTTP/1.1 200 OK\r\nTrailer: X-Sum, Server-Timing\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\nok\r\n0\r\n"
            + "X-Sum: 1\r\nServer-Timing: db;dur=5\r\n\r\n", read);
    }

    [Theory]
    [InlineData("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false, "HTTP/1.1 204 No Content\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")]
    [InlineData("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n", false, "HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", false, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")]
    [InlineData("HTTP/1.1 200\r\nContent-Length: 1, 1\r\n\r\nx", false, "HTTP/1.1 200\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx")]
    public async Task An_answer_without_a_body_or_with_an_empty_one_ends_after_its_head(string answer, bool toHead, string expected)
    {
        var (read, refusal) = await ReadAnswerAsync(answer + After, 4096, close: false, toHead ? "HEAD http://origin.test/ HTTP/1.1" : Get11);
        Assert.Null(refusal);
        Assert.Equal(expected, read);
    }

    /// <summary>RFC 9110 §6.2: the status line carries this proxy's version, HTTP/1.1, whatever the origin's.</summary>
    [Theory]
    [InlineData("HTTP/1.0 200 OK\r\n\r\nuntil the end")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nuntil the end")]
    public async Task An_answer_without_a_length_lasts_until_the_origin_closes(string answer)
    {
        var (read, refusal) = await ReadAnswerAsync(answer, 3, close: true);
        Assert.Null(refusal);
        var head = answer.Split("\r\n\r\n")[0];
        Assert.Equal("HTTP/1.1" + head[8..] + "\r\nConnection: close\r\n\r\nuntil the end", read);
    }

    /// <summary>
    /// RFC 9110 §15.2 and RFC 9112 §6.1, §7: an HTTP/1.0 application is sent no interim answer and no chunked framing. The
    /// body comes as the chunks' data alone, without its trailer section or the fields that framed it, and ends with the
    /// connection; the status line says HTTP/1.1, which a 1.0 recipient reads (RFC 9110 §6.2).
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task To_an_HTTP10_application_interim_answers_go_and_a_chunked_body_comes_as_its_data(int writeSize)
    {
        var (read, refusal) = await ReadAnswerAsync(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            + "HTTP/1.1 200 OK\r\nTrailer: X-Sum\r\nTransfer-Encoding: chunked\r\nX-End: 1\r\n\r\n"
            + "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 1\r\n\r\n" + After, writeSize, close: false, Get10);
        Assert.Null(refusal);
        Assert.Equal("HTTP/1.1 200 OK\r\nX-End: 1\r\nConnection: close\r\n\r\nhello world", read);
    }

    /// <summary>
    /// RFC 9112 §8: a chunked body without its last chunk and trailer section is incomplete. Passed on to an HTTP/1.0
    /// application as its data alone, it cannot show that by its framing, as it does to an HTTP/1.1 one: the read fails
    /// (the pump then resets the application's connection) rather than ending as though the body were whole.
    /// </summary>
    [Theory]
    [InlineData("5\r\nhel")]
    [InlineData("5\r\nhello\r\n")]
    [InlineData("5\r\nhello\r\n0\r\nX-Sum: 1\r\n")]
    public async Task To_an_HTTP10_application_a_chunked_body_the_origin_cuts_short_fails_the_read(string body)
    {
        var cut = await Assert.ThrowsAsync<InvalidDataException>(
            () => ReadAnswerAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 7, close: true, Get10));
        Assert.Contains("the origin closed inside its chunked body", cut.Message);
    }

    [Theory]
    [InlineData("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")]
    [InlineData("HTTP/1.1 200 OK\r\n\r\nuntil the end", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")]
    [InlineData("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n")]
    public async Task To_an_HTTP10_application_other_answers_go_on_as_they_are(string answer, string expected)
    {
        var (read, refusal) = await ReadAnswerAsync(answer, 4096, close: true, Get10);
        Assert.Null(refusal);
        Assert.Equal(expected, read);
    }

    /// <summary>
    /// A transfer coding other than chunked (not asked for: of TE only "trailers" goes on) cannot be taken off for an HTTP/1.0
    /// application, nor named to it: a 502 saying so, not a body it would read wrong.
    /// </summary>
    [Theory]
    [InlineData("Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n")]
    [InlineData("Transfer-Encoding: gzip\r\n\r\nuntil the end")]
    public async Task To_an_HTTP10_application_a_transfer_coding_other_than_chunked_is_a_502(string fieldsAndBody)
    {
        var (read, refusal) = await ReadAnswerAsync("HTTP/1.1 200 OK\r\n" + fieldsAndBody, 4096, close: true, Get10);
        Assert.Equal(RefusalReason.OriginBadAnswer, refusal);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=http_protocol_error; ", read);
        Assert.Contains("a transfer coding other than chunked", read);
    }

    [Theory]
    [InlineData("", RefusalReason.OriginNoAnswer, "the origin closed without answering")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Le", RefusalReason.OriginNoAnswer, "inside its answer's head")]
    [InlineData("HTTP/1.1 200 OK\nContent-Length: 0\n\n", RefusalReason.OriginBadAnswer, "bare LF")]
    [InlineData("SSH-2.0-OpenSSH_9.6\r\n\r\n", RefusalReason.OriginBadAnswer, "status line")]
    [InlineData("HTTP/2 200 OK\r\n\r\n", RefusalReason.OriginBadAnswer, "status line")]
    [InlineData("HTTP/1.1 20x OK\r\n\r\n", RefusalReason.OriginBadAnswer, "status line")]
    [InlineData("HTTP/1.1 200 O\u0001K\r\n\r\n", RefusalReason.OriginBadAnswer, "status line")]
    [InlineData("HTTP/1.1 200 OK\r\nBad Field: 1\r\n\r\n", RefusalReason.OriginBadAnswer, "field line")]
    [InlineData("HTTP/1.1 200 OK\r\n Folded: 1\r\n\r\n", RefusalReason.OriginBadAnswer, "field line")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", RefusalReason.OriginBadAnswer, "Content-Length")]
    [InlineData("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", RefusalReason.OriginBadAnswer, "both")]
    [InlineData("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", RefusalReason.OriginBadAnswer, "chunked")]
    [InlineData("HTTP/1.1 200 OK\r\nConnection: Content-Length\r\nContent-Length: 2\r\n\r\nok", RefusalReason.OriginBadAnswer, "Connection names")]
    [InlineData("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", RefusalReason.OriginBadAnswer, "switched protocols")]
    public async Task An_answer_head_the_proxy_cannot_pass_on_is_a_502_with_a_proxy_status(string answer, RefusalReason reason, string detail)
    {
        var (read, refusal) = await ReadAnswerAsync(answer, 4096, close: true);
        Assert.Equal(reason, refusal);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=", read);
        Assert.Contains(detail, read);
        Assert.EndsWith("\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", read);
    }

    /// <summary>
    /// Chunked framing that breaks in the bytes that came with the head: nothing of the answer has gone on, so the
    /// application gets a 502 with the reason (it got a reset and nothing else).
    /// </summary>
    [Theory]
    [InlineData("ZZ\r\n")]
    [InlineData("2\r\nok\r\n2\r\nokX\r\n")]
    public async Task Chunked_framing_broken_in_the_head_s_own_read_is_a_502_with_the_reason(string body)
    {
        var (read, refusal) = await ReadAnswerAsync("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body, 4096, close: true);
        Assert.Equal(RefusalReason.OriginBadAnswer, refusal);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=http_protocol_error; ", read);
        Assert.Contains("the origin's answer body: a ", read);
    }

    [Fact]
    public async Task An_origin_that_closes_after_an_interim_answer_is_a_502_after_it()
    {
        var (read, refusal) = await ReadAnswerAsync("HTTP/1.1 100 Continue\r\n\r\n", 4096, close: true);
        Assert.Equal(RefusalReason.OriginNoAnswer, refusal);
        Assert.StartsWith("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=http_response_incomplete; ", read);
    }

    /// <summary>
    /// Heads past 16 KiB exist (large Set-Cookie or Content-Security-Policy fields), and HttpClient reads up to 64 KiB: so
    /// does this proxy, a head of exactly 64 KiB included, behind an interim answer too.
    /// </summary>
    [Theory]
    [InlineData(7, false)]
    [InlineData(4096, false)]
    [InlineData(4096, true)]
    public async Task An_answer_head_of_up_to_64_KiB_goes_on_whole(int writeSize, bool afterInterim)
    {
        var interim = afterInterim ? "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n" : "";
        var head = HeadOf(64 * 1024);
        var (read, refusal) = await ReadAnswerAsync(interim + head + "ok" + After, writeSize, close: false);
        Assert.Null(refusal);
        Assert.Equal(interim + head[..^2] + "Connection: close\r\n\r\nok", read);
    }

    [Fact]
    public async Task An_answer_head_over_64_KiB_is_a_502_about_its_size()
    {
        var (read, refusal) = await ReadAnswerAsync(HeadOf(64 * 1024 + 1) + "ok", 4096, close: false);
        Assert.Equal(RefusalReason.OriginAnswerTooLarge, refusal);
        Assert.StartsWith("HTTP/1.1 502 Bad Gateway\r\nProxy-Status: passage; error=http_response_header_section_size; ", read);
        Assert.Contains("larger than 64 KiB", read);
    }

    /// <summary>An answer head of exactly <paramref name="size"/> bytes, its empty line included, with a 2-byte body to follow.</summary>
    private static string HeadOf(int size)
    {
        const string start = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSet-Cookie: a=";
        var head = start + new string('b', size - start.Length - 4) + "\r\n\r\n";
        Assert.Equal(size, head.Length);
        return head;
    }

    /// <summary>
    /// Writes <paramref name="sent"/> to a socket in <paramref name="writeSize"/> pieces (then closes it, or leaves it open,
    /// as an origin that ignores Connection: close does); reads the other end through an
    /// <see cref="OriginAnswerConnection"/> answering <paramref name="requestLine"/> until it ends: what it gave, and the
    /// refusal it answered for the origin.
    /// </summary>
    private static async Task<(string Read, RefusalReason? Refusal)> ReadAnswerAsync(string sent, int writeSize, bool close, string requestLine = Get11)
    {
        var request = ProxyRequestHead.Parse(Encoding.ASCII.GetBytes(requestLine + "\r\n\r\n"), out var why);
        Assert.True(request is not null, why);
        var (writer, reader) = await Loopback.ConnectedPairAsync();
        using var _ = writer;
        await using var origin = new SocketConnection(reader);
        await using var answer = new OriginAnswerConnection(origin, request, new AnswerClaim());
        var writing = PieceByPiece.WriteAsync(writer, sent, writeSize, close);
        var read = new StringBuilder();
        await PieceByPiece.ReadToEndAsync(answer, read);
        await writing.WaitAsync(Timeouts.Default);
        return (read.ToString(), answer.Refusal);
    }

    /// <summary>
    /// What of the body is written after the origin's answer ended (read from the application before, written after) still
    /// reaches the origin, and then the request's end: an origin that reads the body after answering reads it to its end.
    /// </summary>
    [Fact]
    public async Task A_body_write_after_the_answer_ended_still_reaches_the_origin()
    {
        var (peer, origin, answer, tally) = await UploadOverStreamAsync(5, new ManualTimeProvider());
        using var _ = peer;
        await using var __ = origin;
        await using var ___ = answer;
        await Loopback.SendAllAsync(peer, "HTTP/1.1 204 No Content\r\n\r\n"u8.ToArray());
        await PieceByPiece.ReadToEndAsync(answer, new StringBuilder());

        await answer.WriteAsync("hello"u8.ToArray(), CancellationToken.None);
        await answer.CompleteWritesAsync(CancellationToken.None);

        Assert.Equal("hello", Encoding.ASCII.GetString(await Loopback.ReadToEndAsync(peer)));
        Assert.Equal(5, tally.ToUpstream);
    }

    /// <summary>
    /// A write of the request's body that the origin never takes (larger than both sockets' buffers, to an origin that does
    /// not read: it cannot complete) is given up once the answer has ended and the write has made no progress from one look
    /// of the watch to the next: it ends without failing and uncounted, the tunnel is reset rather than ended, and no
    /// request's end follows. Until then it is left alone, however long the clock stands still.
    /// </summary>
    [Fact]
    public async Task A_body_write_the_origin_never_takes_is_given_up_once_the_answer_ended_and_it_made_no_progress()
    {
        var time = new ManualTimeProvider();
        var (peer, origin, answer, tally) = await UploadOverStreamAsync(100_000_000, time);
        using var _ = peer;
        await using var __ = origin;
        await using var ___ = answer;

        var writing = answer.WriteAsync(new byte[64 * 1024 * 1024], CancellationToken.None).AsTask();
        Assert.False(writing.IsCompleted);
        await Loopback.SendAllAsync(peer, "HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n\r\ntoo large"u8.ToArray());
        var read = new StringBuilder();
        await PieceByPiece.ReadToEndAsync(answer, read);
        Assert.Equal("HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\nConnection: close\r\n\r\ntoo large", read.ToString());

        // The first look finds the write under way since the answer ended: it was there at the watch's start, so it is given up.
        Assert.False(writing.IsCompleted);
        time.Advance(LingeringClose.Deadline);
        await writing.WaitAsync(Timeouts.Default);
        await answer.CompleteWritesAsync(CancellationToken.None);
        Assert.Equal(0, tally.ToUpstream);
        await Assert.ThrowsAsync<SocketException>(async () => await Loopback.ReadToEndAsync(peer));
    }

    /// <summary>
    /// The origin's end of an upload of <paramref name="length"/> bytes over a stream, as the proxy's tunnels are, whose bytes
    /// taken are counted in the tally, its watch on <paramref name="time"/>: the origin's socket (<c>Peer</c>) and the tunnel's end.
    /// </summary>
    private static async Task<(Socket Peer, StreamConnection Origin, OriginAnswerConnection Answer, ByteTally Tally)> UploadOverStreamAsync(long length, TimeProvider time)
    {
        var request = ProxyRequestHead.Parse(Encoding.ASCII.GetBytes($"PUT http://origin.test/ HTTP/1.1\r\nContent-Length: {length}\r\n\r\n"), out var why);
        Assert.True(request is not null, why);
        var (peer, tunnel) = await Loopback.ConnectedPairAsync();
        var tally = new ByteTally();
        var origin = new StreamConnection(new NetworkStream(tunnel, ownsSocket: true), tunnel);
        return (peer, origin, new OriginAnswerConnection(origin, request, new AnswerClaim(), tally, time), tally);
    }
}
