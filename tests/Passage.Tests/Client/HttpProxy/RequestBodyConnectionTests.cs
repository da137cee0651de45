using System.Net.Sockets;
using System.Text;
using Passage.Client.HttpProxy;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Client.HttpProxy;

/// <summary>
/// The body of one forwarded request, read from a real socket: exactly as framed, then nothing, however the
/// application's writes fall.
/// </summary>
public sealed class RequestBodyConnectionTests
{
    private const string Pipelined = "GET http://other.test/ HTTP/1.1\r\nCookie: for-other\r\n\r\n";

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task A_chunked_body_passes_whole_and_unchanged_and_what_follows_it_is_dropped(int writeSize)
    {
        const string body = "5;name=\"v\"\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n";
        var (read, error) = await ReadBodyAsync(BodyFraming.Chunked, 0, buffered: "5;na", body[4..] + Pipelined, writeSize);
        Assert.Null(error);
        Assert.Equal(body, read);
    }

    /// <summary>
    /// The proxy's credentials, hop-by-hop fields and those the head's Connection names are cut out of the trailer section
    /// as out of the head; the other trailer lines and the framing around them pass on byte for byte.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(4096)]
    public async Task Trailer_fields_for_this_hop_are_cut_out_and_the_rest_passes_unchanged(int writeSize)
    {
        var head = ProxyRequestHead.Parse(
            "POST http://origin.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: X-Hop\r\n\r\n"u8, out _, out var why);
        Assert.True(head is not null, why);
        const string chunks = "5\r\nhello\r\n0;last\r\n";
        const string trailers = "X-Sum:1\r\nproxy-authorization: Basic c2VjcmV0\r\nX-Hop: 1\r\nKeep-Alive: 5\r\nX-Other: \u00e9 2 \r\n"
            + "Connection: X-Sum\r\nHost: other.test\r\n\r\n";
        var (read, error) = await ReadBodyAsync(BodyFraming.Chunked, 0, buffered: "", chunks + trailers + Pipelined, writeSize, head.Forwards);
        Assert.Null(error);
        Assert.Equal(chunks + "X-Sum:1\r\nX-Other: \u00e9 2 \r\n\r\n", read);
    }

    /// <summary>
    /// RFC 9110 §6.5.1: fields that frame, route, authenticate or modify the request are not sent to the origin in its
    /// trailer section, though the head would have taken them (Authorization, Cookie); the rest passes unchanged.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(4096)]
    public async Task Fields_no_trailer_section_may_carry_are_cut_out_of_the_request_s(int writeSize)
    {
        var head = ProxyRequestHead.Parse("POST http://origin.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"u8, out _, out var why);
        Assert.True(head is not null, why);
        const string chunks = "5\r\nhello\r\n0\r\n";
        const string trailers = "Transfer-Encoding: chunked\r\nX-Sum: 1\r\nContent-Length: 99\r\nAuthorization: Basic c2VjcmV0\r\n"
            + "Cookie: a=1\r\nExpect: 100-continue\r\nMax-Forwards: 0\r\nIf-None-Match: *\r\nX-Other: 2\r\n\r\n";
        var (read, error) = await ReadBodyAsync(BodyFraming.Chunked, 0, buffered: "", chunks + trailers + Pipelined, writeSize, head.Forwards);
        Assert.Null(error);
        Assert.Equal(chunks + "X-Sum: 1\r\nX-Other: 2\r\n\r\n", read);
    }

    [Fact]
    public async Task A_trailer_section_of_nothing_but_cut_fields_still_ends_the_body()
    {
        var (read, error) = await ReadBodyAsync(
            BodyFraming.Chunked, 0, buffered: "0\r\nProxy-Authorization: x\r\n", "\r\n" + Pipelined, writeSize: 4096, name => name != "Proxy-Authorization");
        Assert.Null(error);
        Assert.Equal("0\r\n\r\n", read);
    }

    [Fact]
    public async Task A_content_length_body_ends_after_its_length_whatever_was_read_with_the_head()
    {
        var (read, error) = await ReadBodyAsync(BodyFraming.Length, 11, buffered: "hello wo", "rld" + Pipelined, writeSize: 64);
        Assert.Null(error);
        Assert.Equal("hello world", read);
    }

    [Fact]
    public async Task Without_a_body_nothing_passes()
    {
        var (read, error) = await ReadBodyAsync(BodyFraming.None, 0, buffered: Pipelined, Pipelined, writeSize: 64);
        Assert.Null(error);
        Assert.Equal("", read);
    }

    [Fact]
    public async Task An_application_that_leaves_inside_the_body_ends_it_there()
    {
        var (read, error) = await ReadBodyAsync(BodyFraming.Length, 100, buffered: "", "only this", writeSize: 64);
        Assert.Null(error);
        Assert.Equal("only this", read);
    }

    /// <summary>
    /// Past the body the pump waits with a zero-byte read, holding no buffer: that wait drops what the application sends
    /// and ends only when the application closes, and the read after it is the end of stream.
    /// </summary>
    [Fact]
    public async Task Past_the_body_a_zero_byte_read_drops_what_comes_and_ends_with_the_application()
    {
        var (writer, reader) = await Loopback.ConnectedPairAsync();
        using var _ = writer;
        await using var app = new SocketConnection(reader);
        var body = new RequestBodyConnection(app, "hel"u8.ToArray(), new FramedBody(BodyFraming.Length, 5), new AnswerClaim());
        await Loopback.SendAllAsync(writer, "lo"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(3, await body.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(2, await body.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));

        var waiting = body.ReadAsync(Memory<byte>.Empty, default).AsTask();
        await Loopback.SendAllAsync(writer, Encoding.ASCII.GetBytes(Pipelined));
        await Loopback.SendAllAsync(writer, Encoding.ASCII.GetBytes(Pipelined));
        // Still waiting a while later: those bytes were dropped, not reported.
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        writer.Shutdown(SocketShutdown.Send);
        Assert.Equal(0, await waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(0, await body.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// The tunnel may break the moment the answer's end has gone out (an origin that resets once it has answered), and the
    /// pump then aborts both ends: the application's connection, its answer whole, is not reset for it, and takes what is
    /// left of the body. The answer was marked whole only after its end went out, and an abort in between reset the
    /// application's connection: its upload failed with a broken pipe (a rare failure, under load, of
    /// HttpProxySessionTests.An_answer_out_whole_before_the_body_is_whole_is_kept_and_the_rest_of_the_body_is_dropped).
    /// </summary>
    [Fact]
    public async Task An_abort_as_the_answer_s_end_goes_out_does_not_reset_the_application()
    {
        var (peer, accepted) = await Loopback.ConnectedPairAsync();
        using var _ = peer;
        RequestBodyConnection? body = null;
        // The pump's other direction, failing on the broken tunnel right as the end has gone out.
        await using var app = new AbortedAsItEnds(new SocketConnection(accepted), () => body!.Abort());
        body = new RequestBodyConnection(app, default, new FramedBody(BodyFraming.Length, 100), new AnswerClaim());

        await body.CompleteWritesAsync(default);

        Assert.True(body.Answered);
        await Loopback.SendAllAsync(peer, "rest"u8.ToArray());
        var rest = new byte[4];
        Assert.Equal(4, await app.ReadAsync(rest, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await peer.ReceiveAsync(new byte[1], SocketFlags.None).WaitAsync(Timeouts.Default));
    }

    /// <summary>A connection whose writes' end, once it has gone out, calls <paramref name="ended"/>.</summary>
    private sealed class AbortedAsItEnds(IDuplexConnection inner, Action ended) : IDuplexConnection
    {
        public Socket? Socket => inner.Socket;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => inner.ReadAsync(buffer, cancellationToken);

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.WriteAsync(data, cancellationToken);

        public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
        {
            await inner.CompleteWritesAsync(cancellationToken);
            ended();
        }

        public void Abort() => inner.Abort();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [Theory]
    [InlineData("5\nhello\r\n0\r\n\r\n")]
    [InlineData("5\r\nhello\n0\r\n\r\n")]
    [InlineData("5\r\nhelloXY0\r\n\r\n")]
    [InlineData("5\r\x01\nhello\r\n0\r\n\r\n")]
    [InlineData("x5\r\nhello\r\n0\r\n\r\n")]
    [InlineData("5;a=\x01\r\nhello\r\n0\r\n\r\n")]
    [InlineData("10000000000000000\r\n")]
    [InlineData("0\r\nbad trailer\r\n\r\n")]
    [InlineData("0\r\n folded: x\r\n\r\n")]
    public async Task Broken_chunked_framing_is_an_error_not_a_shorter_or_longer_body(string body)
    {
        var (_, error) = await ReadBodyAsync(BodyFraming.Chunked, 0, buffered: "", body + Pipelined, writeSize: 4096);
        Assert.IsType<InvalidDataException>(error);
    }

    [Fact]
    public async Task A_size_line_longer_than_4_KiB_is_an_error()
    {
        var (_, error) = await ReadBodyAsync(BodyFraming.Chunked, 0, buffered: "", "5;" + new string('a', 5000) + "\r\nhello\r\n0\r\n\r\n", writeSize: 4096);
        Assert.IsType<InvalidDataException>(error);
    }

    /// <summary>
    /// Writes <paramref name="sent"/> to a socket in <paramref name="writeSize"/> pieces, then closes it; reads the
    /// other end through a <see cref="RequestBodyConnection"/> (given <paramref name="buffered"/> as read with the
    /// head) until it ends: what it gave, and the exception it threw, if any.
    /// </summary>
    private static async Task<(string Read, Exception? Error)> ReadBodyAsync(
        BodyFraming framing, long length, string buffered, string sent, int writeSize, Func<string, bool>? forwardsTrailer = null)
    {
        var (writer, reader) = await Loopback.ConnectedPairAsync();
        using var _ = writer;
        await using var app = new SocketConnection(reader);
        var body = new RequestBodyConnection(app, Encoding.Latin1.GetBytes(buffered), new FramedBody(framing, length, forwardsTrailer), new AnswerClaim());
        var writing = PieceByPiece.WriteAsync(writer, sent, writeSize);
        var read = new StringBuilder();
        try
        {
            await PieceByPiece.ReadToEndAsync(body, read);
        }
        catch (InvalidDataException e)
        {
            return (read.ToString(), e);
        }
        await writing.WaitAsync(Timeouts.Default);
        return (read.ToString(), null);
    }
}
