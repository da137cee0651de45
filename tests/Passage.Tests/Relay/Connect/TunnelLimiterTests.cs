using System.Net;
using Passage.Relay.Connect;

namespace Passage.Tests.Relay.Connect;

/// <summary>Who counts as one client for the per-client tunnel limit, and the limits themselves.</summary>
public sealed class TunnelLimiterTests
{
    [Fact]
    public void Addresses_of_one_IPv6_64_share_one_client_limit()
    {
        var limiter = new TunnelLimiter(maxTunnels: 100, maxPerClient: 2);
        using var first = limiter.TryAcquire(IPAddress.Parse("2001:db8:1:2::1"));
        using var second = limiter.TryAcquire(IPAddress.Parse("2001:db8:1:2:aaaa:bbbb:cccc:dddd"));
        Assert.NotNull(first);
        Assert.NotNull(second);

        // A third address of the same /64 is the same client at its limit; the next /64 is another client.
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("2001:db8:1:2:ffff:ffff:ffff:ffff")));
        using var other = limiter.TryAcquire(IPAddress.Parse("2001:db8:1:3::1"));
        Assert.NotNull(other);

        // One of the /64's tunnels ends: a slot opens for any address in it.
        first!.Dispose();
        using var again = limiter.TryAcquire(IPAddress.Parse("2001:db8:1:2::9"));
        Assert.NotNull(again);
        Assert.Equal(3, limiter.Open);
    }

    [Fact]
    public void IPv4_addresses_and_link_local_IPv6_addresses_are_each_a_client_of_their_own()
    {
        var limiter = new TunnelLimiter(maxTunnels: 100, maxPerClient: 1);
        using var a = limiter.TryAcquire(IPAddress.Parse("192.0.2.1"));
        using var b = limiter.TryAcquire(IPAddress.Parse("192.0.2.2"));
        using var c = limiter.TryAcquire(IPAddress.Parse("fe80::1%2"));
        using var d = limiter.TryAcquire(IPAddress.Parse("fe80::2%2"));
        Assert.All(new[] { a, b, c, d }, Assert.NotNull);

        // The same IPv4 client seen through a dual-stack socket is the same client.
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("::ffff:192.0.2.1")));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("fe80::1%2")));
    }

    [Fact]
    public void The_overall_limit_holds_across_clients_and_a_slot_is_given_back_once()
    {
        var limiter = new TunnelLimiter(maxTunnels: 2, maxPerClient: 2);
        var first = limiter.TryAcquire(IPAddress.Parse("192.0.2.1"));
        using var second = limiter.TryAcquire(IPAddress.Parse("2001:db8::1"));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("198.51.100.1")));

        first!.Dispose();
        first.Dispose();
        Assert.Equal(1, limiter.Open);
        using var third = limiter.TryAcquire(IPAddress.Parse("198.51.100.1"));
        Assert.NotNull(third);
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("198.51.100.2")));
    }
}
