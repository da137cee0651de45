using Microsoft.Extensions.Primitives;
using Passage.Client.HttpProxy;
using Passage.Http;
using Passage.Tunnel;

namespace Passage.Tests.Http;

/// <summary>
/// RFC 9110 §7.6.1's hop-by-hop fields, written once and read by both forwarders, each with the departures it states:
/// the client's HTTP proxy passes Transfer-Encoding on (its bodies go on in their own framing) and keeps the proxy's
/// credentials; the tunnel takes the core as it is.
/// </summary>
public sealed class HopByHopTests
{
    private static readonly HashSet<string> NoOptions = new(StringComparer.OrdinalIgnoreCase);

    [Theory]
    [InlineData("Connection")]
    [InlineData("proxy-connection")]
    [InlineData("Keep-Alive")]
    [InlineData("TE")]
    [InlineData("Upgrade")]
    public void The_core_goes_on_through_neither_forwarder(string name)
    {
        Assert.True(HopByHop.IsCore(name));
        Assert.False(TunnelHeaders.IsEndToEnd(name, default));
        Assert.False(MessageFields.Forwards(name, NoOptions));
    }

    [Fact]
    public void Transfer_encoding_is_core_and_goes_on_only_through_the_http_proxy()
    {
        Assert.True(HopByHop.IsCore("transfer-encoding"));
        Assert.False(TunnelHeaders.IsEndToEnd("Transfer-Encoding", default));
        Assert.True(MessageFields.Forwards("Transfer-Encoding", NoOptions));
    }

    [Theory]
    [InlineData("Proxy-Authorization")]
    [InlineData("Proxy-Authenticate")]
    public void The_proxys_credentials_and_challenges_stop_at_the_http_proxy(string name)
    {
        Assert.False(HopByHop.IsCore(name));
        Assert.False(MessageFields.Forwards(name, NoOptions));
    }

    [Theory]
    [InlineData("close, X-Hop", "x-hop", true)]
    [InlineData(" ,X-A ,  X-Hop ,", "X-Hop", true)]
    [InlineData("X-Hopper", "X-Hop", false)]
    [InlineData("", "X-Hop", false)]
    public void A_field_the_connection_field_names_is_this_hops(string connection, string name, bool named)
    {
        Assert.Equal(named, HopByHop.Names([connection], name));
        Assert.Equal(!named, TunnelHeaders.IsEndToEnd(name, new TunnelHeaders.Nominees(new StringValues(["keep-alive", connection]))));
        Assert.Equal(!named, MessageFields.Forwards(name, MessageFields.ConnectionOptions([("Connection", "keep-alive"), ("connection", connection)])));
    }

    [Theory]
    [InlineData("a ,\tX-Hop\t, b", true)]
    [InlineData("X-Hopper, x-hop", true)]
    [InlineData("X-Hopper, X-HopX-Hop", false)]
    [InlineData("aX-Hop, X-Hop b", false)]
    [InlineData("X-Ho", false)]
    [InlineData(",,X-HOP,,", true)]
    public void A_named_field_is_a_whole_member_in_any_case(string connection, bool named)
    {
        Assert.Equal(named, HopByHop.Names(new StringValues(["close", connection]), "X-Hop"));
        Assert.Equal(named, HopByHop.Names([connection], "X-Hop"));
    }

    /// <summary>
    /// A forwarder asks, for each field of a message, whether its Connection names it: that reads the Connection values in
    /// place. Making a string of each member for each field cost seconds for one answer head of a few thousand fields and a
    /// Connection of thousands of members.
    /// </summary>
    [Fact]
    public void Asking_whether_a_long_connection_field_names_a_field_allocates_nothing()
    {
        var connection = new StringValues(["keep-alive", string.Join(", ", Enumerable.Range(0, 4000).Select(i => $"x-{i}"))]);
        var nominees = new TunnelHeaders.Nominees(connection);
        Assert.True(TunnelHeaders.IsEndToEnd("x-4000", nominees));
        Assert.False(TunnelHeaders.IsEndToEnd("X-3999", nominees));
        var before = GC.GetAllocatedBytesForCurrentThread();
        var endToEnd = TunnelHeaders.IsEndToEnd("x-4000", nominees);
        var named = HopByHop.Names(connection, "X-3999");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(endToEnd);
        Assert.True(named);
        Assert.Equal(0, allocated);
    }

    /// <summary>Whether Connection names a field, read in place, agrees with its members as <see cref="FieldSyntax.ListMembers(string?)"/> lists them.</summary>
    [Fact]
    public void A_named_field_is_one_of_the_connection_options()
    {
        var random = new Random(20_261_207);
        const string Alphabet = "aAbB-, \t";
        for (var round = 0; round < 20_000; round++)
        {
            var values = Enumerable.Range(0, random.Next(1, 3))
                .Select(_ => new string(Enumerable.Range(0, random.Next(0, 12)).Select(_ => Alphabet[random.Next(Alphabet.Length)]).ToArray()))
                .ToArray();
            var name = new string(Enumerable.Range(0, random.Next(1, 4)).Select(_ => "aAbB-"[random.Next(5)]).ToArray());
            var expected = HopByHop.ConnectionOptions(values).Contains(name, StringComparer.OrdinalIgnoreCase);
            Assert.True(expected == HopByHop.Names(new StringValues(values), name), $"[{string.Join("|", values)}] {name}");
            Assert.Equal(expected, HopByHop.Names(values, name));
        }
    }

    [Fact]
    public void The_connection_options_are_its_members_as_written()
    {
        Assert.Equal(["close", "X-A", "b"], HopByHop.ConnectionOptions(["close", null, " X-A ,, b "]));
    }

    /// <summary>RFC 9110 §6.6.2: Trailer announces the message's trailer fields; it is no part of the core.</summary>
    [Fact]
    public void Trailer_is_not_core()
    {
        Assert.False(HopByHop.IsCore("Trailer"));
        Assert.True(TunnelHeaders.IsEndToEnd("Trailer", default));
    }

    /// <summary>
    /// RFC 9110 §6.5.1, one list for both forwarders: what a trailer section may not carry stays out of the tunnel's and
    /// the HTTP proxy's trailers alike, whatever either lets through in a head (the HTTP proxy passes Transfer-Encoding on).
    /// </summary>
    [Theory]
    [InlineData("Content-Length", false)]
    [InlineData("transfer-encoding", false)]
    [InlineData("Host", false)]
    [InlineData("Set-Cookie", false)]
    [InlineData("Authorization", false)]
    [InlineData("Trailer", false)]
    [InlineData("TE", false)]
    [InlineData("via", false)]
    [InlineData("X-Sum", true)]
    [InlineData("Server-Timing", true)]
    public void One_list_says_which_fields_a_trailer_section_may_carry(string name, bool carried)
    {
        Assert.Equal(carried, TrailerFields.MayCarry(name));
        Assert.Equal(carried, TunnelHeaders.IsAllowedTrailer(name));
    }
}
