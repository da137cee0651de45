using Microsoft.Extensions.Primitives;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Which fields a message's Connection values take off the tunnel (RFC 9110 §7.6.1): the same answer whether the values
/// are short (scanned as they lie) or long (a set made once per message).
/// </summary>
public sealed class TunnelHeadersNomineesTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Fields_connection_names_are_this_hops_and_others_go_on(bool long_)
    {
        var members = long_ ? string.Join(", ", Enumerable.Range(0, 50).Select(i => $"x{i}")) + ", " : "";
        var connection = new TunnelHeaders.Nominees(new StringValues([$"{members}keep-alive, X-Hop", "X-Second"]));

        foreach (var named in new[] { "X-Hop", "x-hop", "X-Second", "Keep-Alive" })
        {
            Assert.False(TunnelHeaders.IsEndToEnd(named, connection), named);
        }
        foreach (var other in new[] { "X-Other", "X-Ho", "X-Hop2", "Content-Type", "x5y" })
        {
            Assert.True(TunnelHeaders.IsEndToEnd(other, connection), other);
        }
        Assert.Equal(long_, !TunnelHeaders.IsEndToEnd("x17", connection));
        // Fields of the hop whatever Connection says, and none named when there is no Connection.
        Assert.False(TunnelHeaders.IsEndToEnd("Transfer-Encoding", default));
        Assert.True(TunnelHeaders.IsEndToEnd("X-Hop", default));
    }
}
