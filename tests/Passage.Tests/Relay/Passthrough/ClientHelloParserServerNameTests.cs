using System.Buffers;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>The server_name extension (RFC 6066 §3), the host name rules, ALPN, and the extension block rules.</summary>
public sealed class ClientHelloParserServerNameTests
{
    private const int Max = ClientHelloParser.DefaultMaxHandshakeBytes;

    [Theory]
    [InlineData("origin.test", "origin.test")]
    [InlineData("Origin.TEST", "origin.test")]
    [InlineData("origin.test.", "origin.test")]
    [InlineData("localhost", "localhost")]
    [InlineData("a", "a")]
    [InlineData("xn--bcher-kva.example", "xn--bcher-kva.example")]
    [InlineData("_acme.origin.test", "_acme.origin.test")]
    [InlineData("my_host.internal", "my_host.internal")]
    [InlineData("-edge.example", "-edge.example")]
    [InlineData("edge-.example", "edge-.example")]
    [InlineData("1password.com", "1password.com")]
    [InlineData("123.example", "123.example")]
    [InlineData("r3---sn-abc.googlevideo.com", "r3---sn-abc.googlevideo.com")]
    public void Host_names_are_returned_lower_case_without_trailing_dot(string sent, string expected)
    {
        var result = Parse(SyntheticHello.WithServerName(sent));

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(expected, result.ServerName);
    }

    [Fact]
    public void Longest_names_and_labels_are_accepted()
    {
        string label63 = new('a', 63);
        string name253 = string.Join('.', label63, label63, label63, new string('b', 61));
        Assert.Equal(253, name253.Length);

        Assert.Equal($"{label63}.example", Parse(SyntheticHello.WithServerName($"{label63}.example")).ServerName);
        Assert.Equal(name253, Parse(SyntheticHello.WithServerName(name253)).ServerName);
        Assert.Equal(name253, Parse(SyntheticHello.WithServerName(name253 + ".")).ServerName);
    }

    [Fact]
    public void Names_or_labels_over_the_dns_limits_are_malformed()
    {
        string label63 = new('a', 63);
        string name254 = string.Join('.', label63, label63, label63, new string('b', 62));

        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithServerName(new string('a', 64) + ".example")).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithServerName(name254)).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithServerName(new string('a', 5000))).Status);
    }

    [Theory]
    [InlineData("192.0.2.1")]
    [InlineData("192.0.2.1.")]
    [InlineData("127.1")]
    [InlineData("2130706433")]
    [InlineData("0x7f.0.0.1")]
    [InlineData("0X7F000001")]
    [InlineData("example.123")]
    [InlineData("::1")]
    [InlineData("2001:db8::1")]
    [InlineData("[2001:db8::1]")]
    [InlineData("::ffff:192.0.2.1")]
    public void IP_literals_are_ignored_as_no_server_name(string literal)
    {
        // RFC 6066 §3: "Literal IPv4 and IPv6 addresses are not permitted in "HostName"." Passage treats them as
        // absent, so the connection can still go to a fixed upstream but is never routed by an address.
        var result = Parse(SyntheticHello.WithServerName(literal));

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Null(result.ServerName);
        Assert.Contains("IP literal", result.Detail);
    }

    [Theory]
    [InlineData("exa mple.test")]
    [InlineData("*.origin.test")]
    [InlineData("origin.test/path")]
    [InlineData("user@origin.test")]
    [InlineData("origin.test:443")]
    [InlineData("a..b")]
    [InlineData(".origin.test")]
    [InlineData("origin.test..")]
    [InlineData(".")]
    [InlineData("ex\u00e4mple.test")]
    [InlineData("origin\u0000.test")]
    [InlineData("origin.test\r\n")]
    [InlineData("[origin.test]")]
    public void Names_that_are_not_dns_host_names_are_malformed(string name)
    {
        var result = Parse(SyntheticHello.WithServerName(name));

        Assert.Equal(ClientHelloStatus.Malformed, result.Status);
        Assert.Null(result.ServerName);
    }

    [Fact]
    public void Server_name_list_shapes()
    {
        byte[] name = "origin.test"u8.ToArray();

        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList((0, [])))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList())).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((0, []))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList((0, name), (0, "other.test"u8.ToArray())))).Status);

        // Unknown name types are skipped by their length; only host_name (0) is used.
        var unknownOnly = Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList((7, [1, 2, 3]))));
        Assert.Equal(ClientHelloStatus.Complete, unknownOnly.Status);
        Assert.Null(unknownOnly.ServerName);
        Assert.Equal("origin.test", Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList((7, [1, 2, 3]), (0, name)))).ServerName);
        Assert.Equal("origin.test", Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerNameList((0, name), (9, [1])))).ServerName);
    }

    [Fact]
    public void Hellos_without_server_name()
    {
        var noExtensionsBlock = Parse(SyntheticHello.Records(SyntheticHello.Body(null)));
        Assert.Equal(ClientHelloStatus.Complete, noExtensionsBlock.Status);
        Assert.Null(noExtensionsBlock.ServerName);

        var emptyExtensionsBlock = Parse(SyntheticHello.Records(SyntheticHello.Body([])));
        Assert.Equal(ClientHelloStatus.Complete, emptyExtensionsBlock.Status);
        Assert.Null(emptyExtensionsBlock.ServerName);

        var otherExtensions = Parse(SyntheticHello.WithExtensions(SyntheticHello.SupportedVersions(), (0xFF01, [])));
        Assert.Equal(ClientHelloStatus.Complete, otherExtensions.Status);
        Assert.Null(otherExtensions.ServerName);

        // One byte after the compression methods can be neither "no extensions" nor an extensions length.
        byte[] body = [.. SyntheticHello.Body(null), 0];
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.Records(body)).Status);
    }

    [Fact]
    public void Duplicate_extensions_are_malformed()
    {
        // RFC 8446 §4.2: no more than one extension of the same type.
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerName("a.test"), SyntheticHello.ServerName("a.test"))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.SupportedVersions(), SyntheticHello.ServerName("a.test"), SyntheticHello.SupportedVersions())).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((0xFFFF, []), (0xFFFF, []))).Status);
        Assert.Equal(ClientHelloStatus.Complete, Parse(SyntheticHello.WithExtensions((0xFFFF, []), (0xFFFE, []), (0x0001, []))).Status);
    }

    [Fact]
    public void Body_field_rules()
    {
        var sni = SyntheticHello.ServerName("a.test");
        Assert.Equal(ClientHelloStatus.Complete, Parse(SyntheticHello.Records(SyntheticHello.Body([sni], sessionId: new byte[32]))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.Records(SyntheticHello.Body([sni], sessionId: new byte[33]))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.Records(SyntheticHello.Body([sni], cipherSuites: [0x13]))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.Records(SyntheticHello.Body([sni], cipherSuites: [0x13, 0x01, 0x13]))).Status);
        Assert.Equal(ClientHelloStatus.Complete, Parse(SyntheticHello.Records(SyntheticHello.Body([sni], compression: [1, 0]))).Status);
    }

    [Fact]
    public void Alpn_names_are_returned_in_order()
    {
        var result = Parse(SyntheticHello.WithExtensions(SyntheticHello.ServerName("a.test"), SyntheticHello.Alpn("h2", "http/1.1", "acme-tls/1", "x-custom\u00ff")));

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(["h2", "http/1.1", "acme-tls/1", "x-custom\u00ff"], result.ApplicationProtocols);
    }

    [Fact]
    public void Inconsistent_alpn_is_malformed()
    {
        // RFC 7301 §3.1: protocol_name_list<2..2^16-1> of ProtocolName<1..2^8-1>.
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions(SyntheticHello.Alpn("h2", ""))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((16, [0, 0]))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((16, []))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((16, [0, 3, 2, (byte)'h', (byte)'2', 0]))).Status);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(SyntheticHello.WithExtensions((16, [0, 3, 5, (byte)'h', (byte)'2']))).Status);
    }

    [Fact]
    public void Results_other_than_complete_carry_no_name()
    {
        var hello = SyntheticHello.WithExtensions(SyntheticHello.ServerName("a.test"), SyntheticHello.Alpn("h2"));

        var incomplete = Parse(hello[..^1]);
        Assert.Equal(ClientHelloStatus.Incomplete, incomplete.Status);
        Assert.Null(incomplete.ServerName);
        Assert.Empty(incomplete.ApplicationProtocols);
    }

    private static ClientHelloResult Parse(byte[] records) => ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max);
}
