using System.Net;
using Passage.Relay.Destinations;

namespace Passage.Tests.Relay.Destinations;

/// <summary>DNS messages as bytes: the query written exactly, replies from the network read without trust.</summary>
public sealed class DnsWireTests
{
    private const ushort Id = 0x1234;

    [Fact]
    public void A_query_is_a_recursive_standard_query_with_one_question()
    {
        var buffer = new byte[DnsWire.MaxQuery];
        var length = DnsWire.WriteQuery(buffer, Id, "Example.COM.", DnsWire.TypeAaaa);

        byte[] expected =
        [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
            7, (byte)'E', (byte)'x', (byte)'a', (byte)'m', (byte)'p', (byte)'l', (byte)'e', 3, (byte)'C', (byte)'O', (byte)'M', 0,
            0, 28, 0, 1,
        ];
        Assert.Equal(expected, buffer[..length]);
        Assert.Equal(DnsWire.TypeAaaa, DnsWire.QueryType(buffer.AsSpan(0, length)));
    }

    [Fact]
    public void A_query_with_edns_has_an_opt_record_offering_1232_bytes()
    {
        var buffer = new byte[DnsWire.MaxQuery];
        var length = DnsWire.WriteQuery(buffer, Id, "a.test", DnsWire.TypeA, edns: true);

        byte[] expected =
        [
            0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
            1, (byte)'a', 4, (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0, 0, 1, 0, 1,
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0,
        ];
        Assert.Equal(expected, buffer[..length]);
        Assert.Equal(DnsWire.TypeA, DnsWire.QueryType(buffer.AsSpan(0, length)));
    }

    [Fact]
    public void The_longest_query_with_edns_fits()
    {
        var label = new string('a', 63);
        var name = string.Join('.', label, label, label, new string('a', 61));
        Assert.Equal(DnsWire.MaxQuery, DnsWire.WriteQuery(new byte[DnsWire.MaxQuery], Id, name, DnsWire.TypeA, edns: true));
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("a..b")]
    [InlineData("bücher.example")]
    public void A_name_that_cannot_be_asked_is_refused(string name) =>
        Assert.Throws<ArgumentException>(() => DnsWire.WriteQuery(new byte[DnsWire.MaxQuery], Id, name, DnsWire.TypeA));

    [Fact]
    public void Names_longer_than_the_protocol_allows_are_refused()
    {
        var label = new string('a', 63);
        Assert.Throws<ArgumentException>(() => DnsWire.WriteQuery(new byte[DnsWire.MaxQuery], Id, new string('a', 64) + ".test", DnsWire.TypeA));
        Assert.Throws<ArgumentException>(() => DnsWire.WriteQuery(new byte[DnsWire.MaxQuery], Id, string.Join('.', label, label, label, label), DnsWire.TypeA));
        Assert.True(DnsWire.WriteQuery(new byte[DnsWire.MaxQuery], Id, string.Join('.', label, label, label, new string('a', 61)), DnsWire.TypeA) > 0);
    }

    [Fact]
    public void A_reply_is_read_with_its_addresses_and_smallest_ttl()
    {
        var reply = Reply(Id, 0, "a.test", DnsWire.TypeA, Answer("a.test", DnsWire.TypeA, 90, [192, 0, 2, 1]), Answer("a.test", DnsWire.TypeA, 30, [192, 0, 2, 2]));

        Assert.True(DnsWire.TryParseReply(reply, Id, "A.Test", DnsWire.TypeA, out var parsed));
        Assert.Equal([IPAddress.Parse("192.0.2.1"), IPAddress.Parse("192.0.2.2")], parsed.Addresses);
        Assert.Equal(TimeSpan.FromSeconds(30), parsed.Ttl);
        Assert.False(parsed.Truncated);
    }

    [Fact]
    public void A_reply_to_another_question_id_or_type_or_a_query_is_not_the_reply()
    {
        var reply = Reply(Id, 0, "a.test", DnsWire.TypeA, Answer("a.test", DnsWire.TypeA, 90, [192, 0, 2, 1]));
        Assert.False(DnsWire.TryParseReply(reply, Id + 1, "a.test", DnsWire.TypeA, out _));
        Assert.False(DnsWire.TryParseReply(reply, Id, "b.test", DnsWire.TypeA, out _));
        Assert.False(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeAaaa, out _));
        reply[2] &= 0x7F; // QR clear: a query, not a response
        Assert.False(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeA, out _));
    }

    [Fact]
    public void Records_of_other_names_or_types_are_not_taken_as_the_answer()
    {
        var reply = Reply(
            Id, 0, "a.test", DnsWire.TypeA,
            Answer("evil.test", DnsWire.TypeA, 90, [203, 0, 113, 1]),
            Answer("a.test", DnsWire.TypeAaaa, 90, new byte[16]),
            Answer("a.test", DnsWire.TypeA, 90, [1, 2, 3]), // an A of three bytes
            Answer("a.test", DnsWire.TypeA, 90, [192, 0, 2, 1]));

        Assert.True(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeA, out var parsed));
        Assert.Equal([IPAddress.Parse("192.0.2.1")], parsed.Addresses);
    }

    [Fact]
    public void A_label_holding_a_dot_is_not_two_labels()
    {
        // The owner "a.test" written as the single label "a.test" must not match the name a.test.
        byte[] owner = [6, (byte)'a', (byte)'.', (byte)'t', (byte)'e', (byte)'s', (byte)'t', 0];
        var reply = Reply(Id, 0, "a.test", DnsWire.TypeA, [.. owner, .. Fixed(DnsWire.TypeA, 90, [192, 0, 2, 1])]);

        Assert.True(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeA, out var parsed));
        Assert.Empty(parsed.Addresses);
    }

    [Fact]
    public void A_ttl_with_its_top_bit_set_counts_as_zero()
    {
        var reply = Reply(Id, 0, "a.test", DnsWire.TypeA, Answer("a.test", DnsWire.TypeA, 0x8000_0001, [192, 0, 2, 1]));
        Assert.True(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeA, out var parsed));
        Assert.Equal(TimeSpan.Zero, parsed.Ttl);
    }

    [Fact]
    public void Compression_pointers_that_loop_or_point_forward_make_the_reply_unreadable()
    {
        // An answer whose owner is a pointer to itself, and one pointing past itself.
        var header = Reply(Id, 0, "a.test", DnsWire.TypeA);
        header[7] = 1;
        var self = header.Length;
        byte[] looping = [.. header, (byte)(0xC0 | (self >> 8)), (byte)self, .. Fixed(DnsWire.TypeA, 90, [192, 0, 2, 1])];
        byte[] forward = [.. header, (byte)(0xC0 | ((self + 2) >> 8)), (byte)(self + 2), .. Fixed(DnsWire.TypeA, 90, [192, 0, 2, 1])];

        Assert.False(DnsWire.TryParseReply(looping, Id, "a.test", DnsWire.TypeA, out _));
        Assert.False(DnsWire.TryParseReply(forward, Id, "a.test", DnsWire.TypeA, out _));
    }

    [Fact]
    public void A_truncated_reply_says_so_and_carries_no_addresses()
    {
        var reply = Reply(Id, 0, "a.test", DnsWire.TypeA, Answer("a.test", DnsWire.TypeA, 90, [192, 0, 2, 1]));
        reply[2] |= 0x02;
        Assert.True(DnsWire.TryParseReply(reply, Id, "a.test", DnsWire.TypeA, out var parsed));
        Assert.True(parsed.Truncated);
        Assert.Empty(parsed.Addresses);
    }

    [Fact]
    public void Every_cut_and_every_flipped_byte_of_a_reply_is_read_or_refused_never_thrown()
    {
        byte[] reply =
        [
            .. Reply(
                Id, 0, "www.a.test", DnsWire.TypeA,
                [0xC0, 12, .. Fixed(DnsWire.TypeCname, 300, [1, (byte)'b', 0xC0, 16])],
                Answer("b.a.test", DnsWire.TypeA, 60, [192, 0, 2, 1])),
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 8, 0, 10, 0, 4, 1, 2, 3, 4, // an OPT with one option
        ];
        reply[11] = 1;
        Assert.True(DnsWire.TryParseReply(reply, Id, "www.a.test", DnsWire.TypeA, out var whole));
        Assert.Equal([IPAddress.Parse("192.0.2.1")], whole.Addresses);
        Assert.True(whole.Edns);
        Assert.Equal(DnsWire.RcodeNoError, whole.Rcode);

        for (var cut = 0; cut < reply.Length; cut++)
        {
            _ = DnsWire.TryParseReply(reply.AsSpan(0, cut), Id, "www.a.test", DnsWire.TypeA, out _);
        }

        var random = new Random(20261204);
        for (var i = 0; i < 20_000; i++)
        {
            var mutated = (byte[])reply.Clone();
            for (var flips = random.Next(1, 4); flips > 0; flips--)
            {
                mutated[random.Next(mutated.Length)] = (byte)random.Next(256);
            }
            _ = DnsWire.TryParseReply(mutated, Id, "www.a.test", DnsWire.TypeA, out _);
        }

        for (var i = 0; i < 5_000; i++)
        {
            var noise = new byte[random.Next(0, 600)];
            random.NextBytes(noise);
            _ = DnsWire.TryParseReply(noise, (ushort)DnsWire.ReadId(noise), "www.a.test", DnsWire.TypeA, out _);
        }
    }

    private static byte[] Reply(ushort id, int rcode, string name, ushort type, params byte[][] answers)
    {
        var query = new byte[DnsWire.MaxQuery];
        var length = DnsWire.WriteQuery(query, id, name, type);
        var reply = query[..length];
        reply[2] = 0x81;
        reply[3] = (byte)(0x80 | rcode);
        reply[7] = (byte)answers.Length;
        return [.. reply, .. answers.SelectMany(a => a)];
    }

    private static byte[] Answer(string owner, ushort type, uint ttl, byte[] data) =>
        [.. owner.Split('.').SelectMany(l => (byte[])[(byte)l.Length, .. System.Text.Encoding.ASCII.GetBytes(l)]), 0, .. Fixed(type, ttl, data)];

    private static byte[] Fixed(ushort type, uint ttl, byte[] data) =>
        [(byte)(type >> 8), (byte)type, 0, 1, (byte)(ttl >> 24), (byte)(ttl >> 16), (byte)(ttl >> 8), (byte)ttl, (byte)(data.Length >> 8), (byte)data.Length, .. data];
}
