using System.Text;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>Passage's own HTTP/1.1 chunked framing (RFC 9112 §7.1): what it writes, what it reads, what it refuses.</summary>
public sealed class ChunkedBodyTests
{
    [Fact]
    public async Task Writes_one_chunk_per_write_then_the_last_chunk_and_the_trailers()
    {
        var output = new MemoryStream();
        var chunked = new ChunkedWriteStream(output);
        await chunked.WriteAsync("hello"u8.ToArray());
        await chunked.WriteAsync(Array.Empty<byte>());
        await chunked.WriteAsync(new byte[300]);
        await chunked.CompleteAsync([new("x-sum", "abc"), new("X-Count", " 2 ")], CancellationToken.None);
        var text = Encoding.Latin1.GetString(output.ToArray());
        Assert.Equal("5\r\nhello\r\n12c\r\n" + new string('\0', 300) + "\r\n0\r\nx-sum: abc\r\nX-Count: 2\r\n\r\n", text);
    }

    [Theory]
    [InlineData("Content-Length", "5")]
    [InlineData("Transfer-Encoding", "chunked")]
    [InlineData("Host", "elsewhere.test")]
    [InlineData("Trailer", "x-a")]
    [InlineData("Authorization", "Bearer x")]
    [InlineData("Set-Cookie", "a=b")]
    [InlineData("passage-tunnel-status", "200")]
    [InlineData("x-split", "a\r\nInjected: yes")]
    [InlineData("x-nul", "a\0b")]
    [InlineData("bad name", "v")]
    [InlineData("x-wide", "\u0100")]
    public async Task Drops_trailer_fields_that_may_not_be_sent_or_cannot_be_written(string name, string value)
    {
        var output = new MemoryStream();
        var chunked = new ChunkedWriteStream(output);
        await chunked.CompleteAsync([new(name, value), new("x-kept", "1")], CancellationToken.None);
        Assert.Equal("0\r\nx-kept: 1\r\n\r\n", Encoding.Latin1.GetString(output.ToArray()));
    }

    [Fact]
    public async Task Nothing_can_be_written_after_the_last_chunk()
    {
        var chunked = new ChunkedWriteStream(new MemoryStream());
        await chunked.CompleteAsync([], CancellationToken.None);
        await Assert.ThrowsAsync<ObjectDisposedException>(async () => await chunked.WriteAsync("late"u8.ToArray()));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(4096)]
    public async Task What_is_written_reads_back_whole_however_the_bytes_arrive(int arrival)
    {
        var random = new Random(42);
        var body = new byte[200_000];
        random.NextBytes(body);
        var output = new MemoryStream();
        var writer = new ChunkedWriteStream(output);
        for (var at = 0; at < body.Length;)
        {
            var n = Math.Min(random.Next(1, 20_000), body.Length - at);
            await writer.WriteAsync(body.AsMemory(at, n));
            at += n;
        }
        await writer.CompleteAsync([new("x-a", "1"), new("x-b", "two words"), new("x-a", "3")], CancellationToken.None);

        var (read, trailers) = await ReadAllAsync(output.ToArray(), arrival);
        Assert.Equal(body, read);
        Assert.Equal([new("x-a", "1"), new("x-b", "two words"), new("x-a", "3")], trailers);
    }

    [Fact]
    public async Task Reads_chunk_extensions_upper_case_sizes_and_an_empty_trailer_section()
    {
        var (body, trailers) = await ReadAllAsync("A;name=\"v\"\r\n0123456789\r\n1 ; x\r\n!\r\n0\r\n\r\n"u8.ToArray(), 3);
        Assert.Equal("0123456789!", Encoding.ASCII.GetString(body));
        Assert.Empty(trailers);
    }

    /// <summary>RFC 9112 §7.1.1: <c>*( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )</c>, value a token or a quoted-string; whitespace only where BWS stands.</summary>
    [Theory]
    [InlineData("5;a", 5)]
    [InlineData("5;a;b", 5)]
    [InlineData("5;a=b;c=\"d e\"", 5)]
    [InlineData("5 ; a = b", 5)]
    [InlineData("5;a=\"\"", 5)]
    [InlineData("5;a=\"q\\\"\\\\\"", 5)]
    [InlineData("5;a=\"\t\u00e9\"", 5)]
    [InlineData("5;!#$%&'*+-.^_`|~=x", 5)]
    [InlineData("5;ext", 5)]
    [InlineData("5 ;ext", 5)]
    [InlineData("5\t ; ext=\"v\"", 5)]
    [InlineData("1f", 31)]
    public void Size_lines_whose_extensions_follow_the_grammar_are_taken(string line, long size)
    {
        Assert.Equal(size, ChunkedReadStream.ParseSize(line));
    }

    [Theory]
    [InlineData("5 ")]
    [InlineData("5\t")]
    [InlineData("5 6")]
    public void Whitespace_after_the_size_without_an_extension_is_refused(string line)
    {
        Assert.Throws<InvalidDataException>(() => ChunkedReadStream.ParseSize(line));
    }

    [Theory]
    [InlineData("5;")]                  // an extension without a name
    [InlineData("5 ;")]
    [InlineData("5;;a")]
    [InlineData("5;a;")]
    [InlineData("5;=b")]
    [InlineData("5;a=")]                // a name and "=" without a value
    [InlineData("5;a= ")]
    [InlineData("5;a ")]                // blanks after the last extension
    [InlineData("5;a=b ")]
    [InlineData("5;a b")]               // two names without a ";"
    [InlineData("5;a=b c")]
    [InlineData("5;a=b=c")]
    [InlineData("5;a@b")]               // not a token
    [InlineData("5;a=b@c")]
    [InlineData("5;a=\"open")]          // a quoted-string not closed
    [InlineData("5;a=\"esc\\")]
    [InlineData("5;a=\"x\"y")]          // more after the quoted-string
    [InlineData("5;a=\"\u0001\"")]      // a control character inside quotes
    [InlineData("5;a=\"\u007f\"")]
    [InlineData("5;a=\"\u0100\"")]      // beyond Latin-1
    public void Extensions_that_break_the_grammar_are_refused(string line)
    {
        var refused = Assert.Throws<InvalidDataException>(() => ChunkedReadStream.ParseSize(line));
        Assert.Equal("a chunk extension is malformed", refused.Message);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3000)]
    [InlineData(8192)]
    public async Task A_trailer_field_longer_than_the_reader_buffer_reads_back_whole_however_it_arrives(int arrival)
    {
        var value = new string('v', 20_000);
        var (body, trailers) = await ReadAllAsync(Encoding.ASCII.GetBytes($"2\r\nok\r\n0\r\nx-long: {value}\r\n\r\n"), arrival);
        Assert.Equal("ok"u8.ToArray(), body);
        Assert.Equal([new("x-long", value)], trailers);
    }

    [Fact]
    public async Task Hands_the_trailers_over_once_the_last_chunk_is_read()
    {
        IReadOnlyList<KeyValuePair<string, string>>? seen = null;
        using var reader = new Http1Reader(new MemoryStream("1\r\na\r\n0\r\nx-t:  v \r\n\r\n"u8.ToArray()));
        var chunked = new ChunkedReadStream(reader, onTrailers: t => seen = t);
        var buffer = new byte[16];
        Assert.Equal(1, await chunked.ReadAsync(buffer));
        Assert.Null(seen);
        Assert.Equal(0, await chunked.ReadAsync(buffer));
        Assert.Equal([new("x-t", "v")], seen!);
        Assert.Equal(0, await chunked.ReadAsync(buffer));
    }

    [Theory]
    [InlineData("g\r\nabc\r\n0\r\n\r\n")]                       // not hexadecimal
    [InlineData("\r\nabc\r\n0\r\n\r\n")]                        // no size
    [InlineData("-3\r\nabc\r\n0\r\n\r\n")]                      // signed
    [InlineData("0x3\r\nabc\r\n0\r\n\r\n")]                     // prefixed
    [InlineData("1000000000000000\r\n")]                         // more than 15 hex digits
    [InlineData("3\nabc\r\n0\r\n\r\n")]                         // bare LF after the size
    [InlineData("3 \r\nabc\r\n0\r\n\r\n")]                      // blank after the size, no extension
    [InlineData("3;\r\nabc\r\n0\r\n\r\n")]                      // an extension without a name
    [InlineData("3\t\r\nabc\r\n0\r\n\r\n")]                     // tab after the size, no extension
    [InlineData(" 3\r\nabc\r\n0\r\n\r\n")]                      // blank before the size
    [InlineData("3\r\nabcX\r\n0\r\n\r\n")]                      // chunk longer than its size
    [InlineData("3\r\nabc\n0\r\n\r\n")]                         // bare LF after the data
    [InlineData("3\r\nabc\r\n0\r\nx-t: a\rb\r\n\r\n")]          // bare CR in a trailer
    [InlineData("3\r\nabc\r\n0\r\n x-folded: v\r\n\r\n")]       // obs-fold
    [InlineData("3\r\nabc\r\n0\r\nno colon\r\n\r\n")]           // not a field
    [InlineData("3\r\nabc\r\n0\r\n: empty name\r\n\r\n")]       // empty name
    [InlineData("3\r\nabc\r\n0\r\nx-t: a\u0001b\r\n\r\n")]      // control character
    public async Task Refuses_malformed_framing(string framed)
    {
        await Assert.ThrowsAsync<InvalidDataException>(() => ReadAllAsync(Encoding.Latin1.GetBytes(framed), 2));
    }

    [Theory]
    [InlineData("")]
    [InlineData("3\r\nab")]
    [InlineData("3\r\nabc\r\n")]
    [InlineData("3\r\nabc\r\n0\r\n")]
    [InlineData("3\r\nabc\r\n0\r\nx-t: v\r\n")]
    public async Task A_body_cut_off_anywhere_is_an_error_not_a_shorter_body(string framed)
    {
        await Assert.ThrowsAnyAsync<IOException>(() => ReadAllAsync(Encoding.Latin1.GetBytes(framed), 2));
    }

    [Fact]
    public async Task A_trailer_section_larger_than_the_limit_is_refused()
    {
        var framed = "0\r\n" + string.Concat(Enumerable.Range(0, 100).Select(i => $"x-field-{i}: {new string('v', 100)}\r\n")) + "\r\n";
        using var reader = new Http1Reader(new MemoryStream(Encoding.ASCII.GetBytes(framed)));
        var chunked = new ChunkedReadStream(reader, maxTrailerBytes: 4096);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await chunked.CopyToAsync(Stream.Null));
    }

    /// <summary>Reads <paramref name="framed"/> through the decoder, the bytes arriving <paramref name="arrival"/> at a time.</summary>
    private static async Task<(byte[] Body, IReadOnlyList<KeyValuePair<string, string>> Trailers)> ReadAllAsync(byte[] framed, int arrival)
    {
        using var reader = new Http1Reader(new TrickleStream(framed, arrival));
        var chunked = new ChunkedReadStream(reader);
        var body = new MemoryStream();
        var buffer = new byte[5000];
        int n;
        while ((n = await chunked.ReadAsync(buffer)) > 0)
        {
            body.Write(buffer, 0, n);
        }
        return (body.ToArray(), chunked.Trailers);
    }

    /// <summary>Yields at most <c>step</c> bytes per read, so every boundary of the framing falls between reads somewhere.</summary>
    private sealed class TrickleStream(byte[] data, int step) : Passage.Transport.ReadOnlyStream
    {
        private int _at;

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var n = Math.Min(Math.Min(buffer.Length, step), data.Length - _at);
            data.AsSpan(_at, n).CopyTo(buffer.Span);
            _at += n;
            return ValueTask.FromResult(n);
        }
    }
}
