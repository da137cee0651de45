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

    /// <summary>
    /// An IPv6 address that carries an IPv4 one is the IPv4 host's: behind a NAT64 or SIIT translator (64:ff9b::/96) every
    /// IPv4 client shares one /64, so keyed by /64 the whole IPv4 Internet shared one client's tunnels; a 6to4 site holds a
    /// /48 (65536 /64s) from its one IPv4 address; the Teredo clients of one server share its /64.
    /// </summary>
    [Fact]
    public void IPv6_addresses_that_carry_an_IPv4_address_count_as_that_IPv4_client()
    {
        var limiter = new TunnelLimiter(maxTunnels: 100, maxPerClient: 1);
        // NAT64 well-known prefix: 192.0.2.1 and 192.0.2.2, two clients; 192.0.2.1 reaching the relay directly is the first.
        using var nat64 = limiter.TryAcquire(IPAddress.Parse("64:ff9b::c000:201"));
        using var nat64Other = limiter.TryAcquire(IPAddress.Parse("64:ff9b::c000:202"));
        // IPv4-compatible (deprecated): 198.51.100.1 and 198.51.100.2.
        using var compatible = limiter.TryAcquire(IPAddress.Parse("::c633:6401"));
        using var compatibleOther = limiter.TryAcquire(IPAddress.Parse("::c633:6402"));
        // Teredo: the clients 192.0.2.45 and 192.0.2.46 (bits 96-127, inverted) of one Teredo server.
        using var teredo = limiter.TryAcquire(IPAddress.Parse("2001:0:4136:e378:8000:63bf:3fff:fdd2"));
        using var teredoOther = limiter.TryAcquire(IPAddress.Parse("2001:0:4136:e378:8000:63bf:3fff:fdd1"));
        // 6to4: the site of 203.0.113.1.
        using var sixToFour = limiter.TryAcquire(IPAddress.Parse("2002:cb00:7101:1::1"));
        Assert.All(new[] { nat64, nat64Other, compatible, compatibleOther, teredo, teredoOther, sixToFour }, Assert.NotNull);

        Assert.Null(limiter.TryAcquire(IPAddress.Parse("192.0.2.1")));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("198.51.100.2")));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("192.0.2.45")));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("2002:cb00:7101:2::1")));
        Assert.Null(limiter.TryAcquire(IPAddress.Parse("::ffff:203.0.113.1")));
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
