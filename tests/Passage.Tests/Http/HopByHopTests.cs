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
        Assert.False(TunnelHeaders.IsEndToEnd(name, StringValues.Empty));
        Assert.False(MessageFields.Forwards(name, NoOptions));
    }

    [Fact]
    public void Transfer_encoding_is_core_and_goes_on_only_through_the_http_proxy()
    {
        Assert.True(HopByHop.IsCore("transfer-encoding"));
        Assert.False(TunnelHeaders.IsEndToEnd("Transfer-Encoding", StringValues.Empty));
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
        Assert.Equal(!named, TunnelHeaders.IsEndToEnd(name, new StringValues(["keep-alive", connection])));
        Assert.Equal(!named, MessageFields.Forwards(name, MessageFields.ConnectionOptions([("Connection", "keep-alive"), ("connection", connection)])));
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
        Assert.True(TunnelHeaders.IsEndToEnd("Trailer", StringValues.Empty));
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
