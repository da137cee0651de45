using System.Net;
using Passage.Relay.Destinations;

namespace Passage.Tests.Relay.Destinations;

public sealed class AddressPolicyTests
{
    private static readonly AddressPolicy s_allowPrivate = new(allowPrivate: true, allowedNetworks: []);

    [Theory]
    [InlineData("8.8.8.8")]
    [InlineData("2606:4700:4700::1111")]
    [InlineData("::ffff:8.8.8.8")]
    public void Allows_public_addresses(string address)
    {
        AddressVerdict verdict = AddressPolicy.PublicOnly.Check(IPAddress.Parse(address));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Public), verdict);
    }

    [Theory]
    [InlineData("0.0.0.0", AddressCategory.Unspecified)]
    [InlineData("::", AddressCategory.Unspecified)]
    [InlineData("127.0.0.1", AddressCategory.Loopback)]
    [InlineData("::1", AddressCategory.Loopback)]
    [InlineData("::ffff:127.0.0.1", AddressCategory.Loopback)]
    [InlineData("10.1.2.3", AddressCategory.Private)]
    [InlineData("fd12::1", AddressCategory.Private)]
    [InlineData("169.254.1.1", AddressCategory.LinkLocal)]
    [InlineData("fe80::1", AddressCategory.LinkLocal)]
    [InlineData("100.64.0.1", AddressCategory.SharedCgnat)]
    [InlineData("224.0.0.1", AddressCategory.Multicast)]
    [InlineData("ff02::1", AddressCategory.Multicast)]
    [InlineData("255.255.255.255", AddressCategory.Reserved)]
    [InlineData("2001:db8::1", AddressCategory.Reserved)]
    [InlineData("169.254.169.254", AddressCategory.Metadata)]
    [InlineData("fd00:ec2::254", AddressCategory.Metadata)]
    public void Refuses_every_other_category_by_default(string address, AddressCategory category)
    {
        AddressVerdict verdict = AddressPolicy.PublicOnly.Check(IPAddress.Parse(address));
        Assert.Equal(new AddressVerdict(false, category), verdict);
    }

    [Theory]
    [InlineData("127.0.0.1", AddressCategory.Loopback)]
    [InlineData("::1", AddressCategory.Loopback)]
    [InlineData("10.1.2.3", AddressCategory.Private)]
    [InlineData("192.168.1.1", AddressCategory.Private)]
    [InlineData("fd12::1", AddressCategory.Private)]
    [InlineData("169.254.1.1", AddressCategory.LinkLocal)]
    [InlineData("fe80::1", AddressCategory.LinkLocal)]
    [InlineData("100.64.0.1", AddressCategory.SharedCgnat)]
    [InlineData("::ffff:10.0.0.1", AddressCategory.Private)]
    public void Allow_private_opens_loopback_private_link_local_and_cgnat(string address, AddressCategory category) =>
        Assert.Equal(new AddressVerdict(true, category), s_allowPrivate.Check(IPAddress.Parse(address)));

    [Theory]
    [InlineData("169.254.169.254", AddressCategory.Metadata)]
    [InlineData("169.254.170.2", AddressCategory.Metadata)]
    [InlineData("100.100.100.200", AddressCategory.Metadata)]
    [InlineData("fd00:ec2::254", AddressCategory.Metadata)]
    [InlineData("169.254.170.23", AddressCategory.Metadata)]
    [InlineData("fd00:ec2::23", AddressCategory.Metadata)]
    [InlineData("fd20:ce::254", AddressCategory.Metadata)]
    [InlineData("::ffff:169.254.169.254", AddressCategory.Metadata)]
    [InlineData("64:ff9b::a9fe:a9fe", AddressCategory.Metadata)]
    [InlineData("224.0.0.1", AddressCategory.Multicast)]
    [InlineData("0.0.0.0", AddressCategory.Unspecified)]
    [InlineData("::", AddressCategory.Unspecified)]
    [InlineData("255.255.255.255", AddressCategory.Reserved)]
    [InlineData("198.18.0.1", AddressCategory.Reserved)]
    public void Allow_private_keeps_metadata_multicast_unspecified_and_reserved_refused(string address, AddressCategory category) =>
        Assert.Equal(new AddressVerdict(false, category), s_allowPrivate.Check(IPAddress.Parse(address)));

    [Fact]
    public void An_allowed_network_opens_its_addresses_whatever_their_category()
    {
        var policy = new AddressPolicy(
            allowPrivate: false,
            [IPNetwork.Parse("10.1.0.0/16"), IPNetwork.Parse("169.254.169.254/32"), IPNetwork.Parse("fd00:1::/32")]);

        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), policy.Check(IPAddress.Parse("10.1.2.3")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), policy.Check(IPAddress.Parse("::ffff:10.1.2.3")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Metadata), policy.Check(IPAddress.Parse("169.254.169.254")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), policy.Check(IPAddress.Parse("fd00:1::5")));

        Assert.Equal(new AddressVerdict(false, AddressCategory.Private), policy.Check(IPAddress.Parse("10.2.0.1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.LinkLocal), policy.Check(IPAddress.Parse("169.254.169.253")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), policy.Check(IPAddress.Parse("169.254.170.2")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Private), policy.Check(IPAddress.Parse("fd00:2::5")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Public), policy.Check(IPAddress.Parse("8.8.8.8")));
    }

    /// <summary>
    /// A network written for a private or link-local range holds a cloud metadata endpoint (fd00::/8 holds AWS's IPv6
    /// one): it opens the range, not the host's credentials. Only a network of the metadata address alone does.
    /// </summary>
    [Fact]
    public void A_metadata_address_is_opened_only_by_a_network_of_it_alone()
    {
        var wide = new AddressPolicy(
            allowPrivate: true,
            [IPNetwork.Parse("169.254.0.0/16"), IPNetwork.Parse("fd00::/8"), IPNetwork.Parse("100.64.0.0/10"), IPNetwork.Parse("0.0.0.0/0"), IPNetwork.Parse("::/0")]);

        Assert.Equal(new AddressVerdict(true, AddressCategory.LinkLocal), wide.Check(IPAddress.Parse("169.254.1.1")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), wide.Check(IPAddress.Parse("fd00:ec2::253")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Reserved), wide.Check(IPAddress.Parse("192.0.2.1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), wide.Check(IPAddress.Parse("169.254.169.254")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), wide.Check(IPAddress.Parse("::ffff:169.254.169.254")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), wide.Check(IPAddress.Parse("fd00:ec2::254")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), wide.Check(IPAddress.Parse("100.100.100.200")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), wide.Check(IPAddress.Parse("168.63.129.16")));

        var named = new AddressPolicy(allowPrivate: false, [IPNetwork.Parse("169.254.169.254/32"), IPNetwork.Parse("fd00:ec2::254/128")]);
        Assert.Equal(new AddressVerdict(true, AddressCategory.Metadata), named.Check(IPAddress.Parse("169.254.169.254")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Metadata), named.Check(IPAddress.Parse("::ffff:169.254.169.254")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Metadata), named.Check(IPAddress.Parse("fd00:ec2::254")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Metadata), named.Check(IPAddress.Parse("169.254.170.2")));
    }

    /// <summary>
    /// An IPv4-mapped address is where a dual-stack socket connects: its IPv4 address. An IPv6 network (<c>::/0</c> for
    /// "every IPv6 destination", or <c>::/80</c>) holds the mapped block in its bits, but opens no IPv4 address: an AAAA
    /// record of <c>::ffff:127.0.0.1</c> must not reach the relay's loopback through it.
    /// </summary>
    [Fact]
    public void An_ipv6_network_does_not_open_ipv4_addresses_in_their_mapped_form()
    {
        var policy = new AddressPolicy(allowPrivate: false, [IPNetwork.Parse("::/0")]);

        Assert.Equal(new AddressVerdict(false, AddressCategory.Loopback), policy.Check(IPAddress.Parse("::ffff:127.0.0.1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Private), policy.Check(IPAddress.Parse("::ffff:10.0.0.1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Multicast), policy.Check(IPAddress.Parse("::ffff:224.0.0.1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Reserved), policy.Check(IPAddress.Parse("::ffff:240.0.0.1")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Loopback), policy.Check(IPAddress.Parse("::1")));
        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), policy.Check(IPAddress.Parse("fd00::1")));
        Assert.Equal(new AddressVerdict(false, AddressCategory.Private), policy.Check(IPAddress.Parse("10.0.0.1")));

        var mappedBlock = new AddressPolicy(allowPrivate: false, [IPNetwork.Parse("::/80")]);
        Assert.Equal(new AddressVerdict(false, AddressCategory.Loopback), mappedBlock.Check(IPAddress.Parse("::ffff:127.0.0.1")));

        var ipv4 = new AddressPolicy(allowPrivate: false, [IPNetwork.Parse("10.0.0.0/8")]);
        Assert.Equal(new AddressVerdict(true, AddressCategory.Private), ipv4.Check(IPAddress.Parse("::ffff:10.0.0.1")));
    }

    [Fact]
    public void Copies_the_allowed_networks()
    {
        var networks = new List<IPNetwork> { IPNetwork.Parse("10.0.0.0/8") };
        var policy = new AddressPolicy(allowPrivate: false, networks);
        networks.Clear();

        Assert.True(policy.Check(IPAddress.Parse("10.0.0.1")).IsAllowed);
        Assert.Single(policy.AllowedNetworks);
    }

    [Fact]
    public void Parses_a_network_list_reporting_every_bad_entry_with_its_key()
    {
        var errors = new List<string>();
        IReadOnlyList<IPNetwork> networks = AddressPolicy.ParseNetworks(
            ["10.0.0.0/8", "10.0.0.0/33", "fd00::/8", "", null, "10.0.0.1/8", "10.1/16", " 10.0.0.0/8", "10.0.0.1", "garbage", "::1/129", "169.254.169.254/32"],
            "relay.allowNetworks",
            errors);

        Assert.Equal([IPNetwork.Parse("10.0.0.0/8"), IPNetwork.Parse("fd00::/8"), IPNetwork.Parse("169.254.169.254/32")], networks);
        Assert.Equal(
            [
                "relay.allowNetworks[1]: '10.0.0.0/33' is not a network in CIDR form",
                "relay.allowNetworks[3]: an empty entry is not a network in CIDR form",
                "relay.allowNetworks[4]: an empty entry is not a network in CIDR form",
                "relay.allowNetworks[5]: '10.0.0.1/8' has address bits set beyond its prefix length; did you mean '10.0.0.0/8'?",
                "relay.allowNetworks[6]: '10.1/16' is not a network in CIDR form",
                "relay.allowNetworks[7]: ' 10.0.0.0/8' is not a network in CIDR form",
                "relay.allowNetworks[8]: '10.0.0.1' is not a network in CIDR form",
                "relay.allowNetworks[9]: 'garbage' is not a network in CIDR form",
                "relay.allowNetworks[10]: '::1/129' is not a network in CIDR form",
            ],
            errors);
    }

    /// <summary>
    /// Addresses are matched without their zone, and an A record's address is not matched against an IPv6 network: a
    /// network on one interface would allow every interface's link-local addresses, and an IPv4-mapped one only the
    /// AAAA form of what it names. Each is refused with the network that means what was written.
    /// </summary>
    [Fact]
    public void A_network_with_a_zone_or_in_ipv4_mapped_form_is_refused_with_the_form_that_means_it()
    {
        var errors = new List<string>();
        IReadOnlyList<IPNetwork> networks = AddressPolicy.ParseNetworks(
            ["fe80::%lo/64", "fe80::%2/64", "::ffff:10.0.0.0/104", "::ffff:192.0.2.7/128", "::ffff:0:0/96", "fe80::/64"],
            "relay.allowNetworks",
            errors);

        Assert.Equal([IPNetwork.Parse("fe80::/64")], networks);
        Assert.Equal(
            [
                "relay.allowNetworks[0]: 'fe80::%lo/64' names a zone, but networks are matched on every interface; write 'fe80::/64'",
                "relay.allowNetworks[1]: 'fe80::%2/64' names a zone, but networks are matched on every interface; write 'fe80::/64'",
                "relay.allowNetworks[2]: '::ffff:10.0.0.0/104' is an IPv4-mapped network, which IPv4 addresses are not matched against; write '10.0.0.0/8' (it covers the mapped form too)",
                "relay.allowNetworks[3]: '::ffff:192.0.2.7/128' is an IPv4-mapped network, which IPv4 addresses are not matched against; write '192.0.2.7/32' (it covers the mapped form too)",
                "relay.allowNetworks[4]: '::ffff:0:0/96' is an IPv4-mapped network, which IPv4 addresses are not matched against; write '0.0.0.0/0' (it covers the mapped form too)",
            ],
            errors);
    }
}
