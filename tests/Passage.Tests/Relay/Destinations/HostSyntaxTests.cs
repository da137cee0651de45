using System.Net;
using Passage.Relay.Destinations;

namespace Passage.Tests.Relay.Destinations;

public sealed class HostSyntaxTests
{
    [Theory]
    [InlineData("127.0.0.1", "127.0.0.1")]
    [InlineData("2130706433", "127.0.0.1")]
    [InlineData("0x7f.1", "127.0.0.1")]
    [InlineData("0X7F.1", "127.0.0.1")]
    [InlineData("0x7f000001", "127.0.0.1")]
    [InlineData("0x7F000001", "127.0.0.1")]
    [InlineData("017700000001", "127.0.0.1")]
    [InlineData("127.1", "127.0.0.1")]
    [InlineData("127.0.1", "127.0.0.1")]
    [InlineData("0177.0.0.1", "127.0.0.1")]
    [InlineData("0177.1", "127.0.0.1")]
    [InlineData("0x7F.0.0.1", "127.0.0.1")]
    [InlineData("0x7f.0x0.0x0.0x1", "127.0.0.1")]
    [InlineData("127.0.0.01", "127.0.0.1")]
    [InlineData("127.00000000000000000000001", "127.0.0.1")]
    [InlineData("0000127.0.0.1", "87.0.0.1")] // leading zero: octal 127, as inet_aton reads it
    [InlineData("0", "0.0.0.0")]
    [InlineData("0x0", "0.0.0.0")]
    [InlineData("00", "0.0.0.0")]
    [InlineData("4294967295", "255.255.255.255")]
    [InlineData("0xffffffff", "255.255.255.255")]
    [InlineData("037777777777", "255.255.255.255")]
    [InlineData("169.254.43518", "169.254.169.254")]
    [InlineData("0xa9fea9fe", "169.254.169.254")]
    [InlineData("10.65535", "10.0.255.255")]
    [InlineData("10.0.65535", "10.0.255.255")]
    [InlineData("1.2.3", "1.2.0.3")]
    [InlineData("8.8.8.8", "8.8.8.8")]
    public void Recognises_every_ipv4_literal_form(string host, string expected)
    {
        Assert.Equal(HostKind.Address, HostSyntax.Parse(host, out IPAddress? address));
        Assert.Equal(IPAddress.Parse(expected), address);
    }

    [Theory]
    [InlineData("::ffff:127.0.0.1", "::ffff:127.0.0.1")]
    [InlineData("[::ffff:127.0.0.1]", "::ffff:127.0.0.1")]
    [InlineData("[::ffff:7f00:1]", "::ffff:127.0.0.1")]
    [InlineData("[0:0:0:0:0:ffff:127.0.0.1]", "::ffff:127.0.0.1")]
    [InlineData("[::1]", "::1")]
    [InlineData("::1", "::1")]
    [InlineData("[::]", "::")]
    [InlineData("::", "::")]
    [InlineData("0:0:0:0:0:0:0:1", "::1")]
    [InlineData("::1%lo", "::1")]
    [InlineData("[::1%1]", "::1")]
    [InlineData("fe80::1%2", "fe80::1")]
    [InlineData("[FE80::1%eth0]", "fe80::1")]
    [InlineData("64:ff9b::7f00:1", "64:ff9b::127.0.0.1")]
    [InlineData("2606:4700:4700::1111", "2606:4700:4700::1111")]
    public void Recognises_ipv6_literals_with_brackets_and_zones(string host, string expected)
    {
        Assert.Equal(HostKind.Address, HostSyntax.Parse(host, out IPAddress? address));
        Assert.Equal(IPAddress.Parse(expected).GetAddressBytes(), address!.GetAddressBytes());
    }

    [Fact]
    public void Keeps_a_numeric_zone_as_the_scope_id()
    {
        Assert.Equal(HostKind.Address, HostSyntax.Parse("fe80::1%2", out IPAddress? address));
        Assert.Equal(2, address!.ScopeId);
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f.1")]
    [InlineData("0x7f000001")]
    [InlineData("127.1")]
    [InlineData("0177.0.0.1")]
    [InlineData("0x7F.0.0.1")]
    [InlineData("0000127.0.0.1")]
    [InlineData("1.2.3")]
    [InlineData("0xffffffff")]
    [InlineData("127.00000000000000000000001")]
    public void Agrees_with_the_platform_parser_on_the_forms_both_accept(string host)
    {
        Assert.True(IPAddress.TryParse(host, out IPAddress? platform));
        Assert.Equal(HostKind.Address, HostSyntax.Parse(host, out IPAddress? ours));
        Assert.Equal(platform, ours);
    }

    [Theory]
    [InlineData("")]
    [InlineData(".")]
    [InlineData("..")]
    [InlineData("1.2.3.4.5")]
    [InlineData("0x")]
    [InlineData("0x.1")]
    [InlineData("1.0x")]
    [InlineData("999.1.1.1")]
    [InlineData("256.0.0.1")]
    [InlineData("1.256.0.1")]
    [InlineData("1.2.3.256")]
    [InlineData("1.2.65536")]
    [InlineData("1.16777216")]
    [InlineData("4294967296")]
    [InlineData("0x100000000")]
    [InlineData("040000000000")]
    [InlineData("08.1.1.1")]
    [InlineData("09")]
    [InlineData("0xg.1")]
    [InlineData("1..2.3")]
    [InlineData(".1.2.3")]
    [InlineData("1.2.3.4.")]
    [InlineData("127.0.0.1 ")]
    [InlineData(" 127.0.0.1")]
    [InlineData("+1.2.3.4")]
    [InlineData("-1")]
    [InlineData("example.123")]
    [InlineData("example.0x10")]
    [InlineData("1.2.3.4:80")]
    [InlineData("1.2.3.4%5")]
    [InlineData("[1.2.3.4]")]
    [InlineData("[::1]:80")]
    [InlineData("[::1]80")]
    [InlineData("[::1")]
    [InlineData("::1]")]
    [InlineData("[]")]
    [InlineData("[example.com]")]
    [InlineData(":::1")]
    [InlineData("1:2:3:4:5:6:7:8:9")]
    [InlineData("::1/128")]
    [InlineData("::1%")]
    [InlineData("::1%%1")]
    [InlineData("fe80::1%2%3")]
    [InlineData("::1%a b")]
    [InlineData("::1%é")]
    [InlineData("::ffff:127.1")]
    [InlineData("::ffff:0x7f.0.0.1")]
    [InlineData("host:80")]
    public void Refuses_malformed_literals_and_numeric_looking_names(string host)
    {
        Assert.Equal(HostKind.Invalid, HostSyntax.Parse(host, out IPAddress? address));
        Assert.Null(address);
    }

    [Theory]
    [InlineData("a b.com")]
    [InlineData("exa\tmple.com")]
    [InlineData("exa\0mple.com")]
    [InlineData("example.com\r\n")]
    [InlineData("exämple.com")]
    [InlineData("example.com/path")]
    [InlineData("user@example.com")]
    [InlineData("example%2ecom")]
    [InlineData("a..b")]
    [InlineData(".example.com")]
    [InlineData("example.com..")]
    [InlineData("-example.com")]
    [InlineData("example-.com")]
    [InlineData("example.-com")]
    [InlineData("*.example.com")]
    public void Refuses_malformed_names(string host) =>
        Assert.Equal(HostKind.Invalid, HostSyntax.Parse(host, out _));

    [Theory]
    [InlineData("example.com")]
    [InlineData("example.com.")]
    [InlineData("EXAMPLE.Com")]
    [InlineData("localhost")]
    [InlineData("_acme-challenge._tcp.example.com")]
    [InlineData("xn--bcher-kva.example")]
    [InlineData("123.example.com")]
    [InlineData("0x7f.example")]
    [InlineData("1e1")]
    [InlineData("0xg")]
    [InlineData("a-b--c.d")]
    public void Accepts_valid_names(string host) =>
        Assert.Equal(HostKind.Name, HostSyntax.Parse(host, out _));

    [Fact]
    public void Enforces_label_and_name_lengths()
    {
        string label63 = new('a', 63);
        Assert.Equal(HostKind.Name, HostSyntax.Parse(label63 + ".com", out _));
        Assert.Equal(HostKind.Invalid, HostSyntax.Parse(label63 + "a.com", out _));

        // Three labels of 63 and one of 61, joined by three dots: 253 characters.
        string name253 = string.Join('.', label63, label63, label63, new string('a', 61));
        Assert.Equal(253, name253.Length);
        Assert.Equal(HostKind.Name, HostSyntax.Parse(name253, out _));
        Assert.Equal(HostKind.Name, HostSyntax.Parse(name253 + ".", out _));
        Assert.Equal(HostKind.Invalid, HostSyntax.Parse(name253 + "a", out _));
        Assert.Equal(HostKind.Invalid, HostSyntax.Parse(name253 + "a.", out _));
    }
}
