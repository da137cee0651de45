using System.Buffers;
using System.Text;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>The first bytes of a connection: not TLS, not yet decidable, or a broken record layer (RFC 8446 §5.1).</summary>
public sealed class ClientHelloParserFramingTests
{
    private const int Max = ClientHelloParser.DefaultMaxHandshakeBytes;

    [Theory]
    [InlineData("GET / HTTP/1.1\r\nHost: origin.test\r\n\r\n")]
    [InlineData("G")]
    [InlineData("CONNECT origin.test:443 HTTP/1.1\r\n")]
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    public void Text_protocols_are_not_tls_from_the_first_byte(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);

        var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(bytes), Max);

        Assert.Equal(ClientHelloStatus.NotTls, result.Status);
        Assert.Equal(1, result.BytesExamined);
        Assert.NotNull(result.Detail);
    }

    [Fact]
    public void SSLv2_compatible_hello_is_not_tls()
    {
        // RFC 5246 Appendix E.2: two-byte length with the high bit set, msg_type 1, version 3.1, ...
        byte[] sslv2 = [0x80, 0x2E, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x2F];

        Assert.Equal(ClientHelloStatus.NotTls, Parse(sslv2));
        Assert.Equal(ClientHelloStatus.NotTls, Parse(sslv2[..1]));
    }

    [Fact]
    public void Alert_as_first_record_is_not_tls()
    {
        // Only a handshake record can open a TLS connection from the client side.
        Assert.Equal(ClientHelloStatus.NotTls, Parse(TlsAlert.DecodeError.ToArray()));
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 22 })]
    [InlineData(new byte[] { 22, 3 })]
    [InlineData(new byte[] { 22, 3, 1 })]
    [InlineData(new byte[] { 22, 3, 1, 0 })]
    [InlineData(new byte[] { 22, 3, 0, 0 })]
    [InlineData(new byte[] { 22, 3, 1, 0, 5 })]
    [InlineData(new byte[] { 22, 3, 1, 0x40, 0x00 })]
    [InlineData(new byte[] { 22, 3, 1, 0, 5, 1 })]
    [InlineData(new byte[] { 22, 3, 1, 0, 5, 1, 0, 0 })]
    public void Consistent_prefixes_are_incomplete(byte[] bytes)
    {
        Assert.Equal(ClientHelloStatus.Incomplete, Parse(bytes));
    }

    [Theory]
    [InlineData(new byte[] { 22, 0x17 }, (int)ClientHelloStatus.NotTls)]
    [InlineData(new byte[] { 22, 0x02, 0x00 }, (int)ClientHelloStatus.NotTls)]
    [InlineData(new byte[] { 22, 3, 0x09, 0x41, 0x42, 0x43 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 0x05 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0x40, 0x01 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0xFF, 0xFF, 1, 2, 3 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0, 0 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 2 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 1, 0, 0, 40 }, (int)ClientHelloStatus.Malformed)]
    [InlineData(new byte[] { 22, 3, 1, 0, 4, 1, 0xFF, 0xFF, 0xFF }, (int)ClientHelloStatus.TooLarge)]
    public void Tls_looking_junk_is_decided_from_the_header(byte[] bytes, int expected)
    {
        Assert.Equal((ClientHelloStatus)expected, Parse(bytes));
    }

    [Theory]
    [InlineData(20)]
    [InlineData(21)]
    [InlineData(23)]
    [InlineData(0)]
    [InlineData(0x47)]
    public void Another_record_type_inside_the_hello_is_malformed(byte contentType)
    {
        var handshake = SyntheticHello.Handshake(SyntheticHello.Body([SyntheticHello.ServerName("origin.test")]));
        byte[] intruder = [contentType, 3, 3, 0, 1, 1];
        byte[] records = [.. TlsRecords.Wrap(handshake[..10], [10]), .. intruder, .. TlsRecords.Wrap(handshake[10..], [1000])];

        Assert.Equal(ClientHelloStatus.Malformed, Parse(records));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(records[..16]));
    }

    [Fact]
    public void Zero_length_handshake_record_inside_the_hello_is_malformed()
    {
        // RFC 8446 §5.1: no zero-length fragments of the handshake type.
        var handshake = SyntheticHello.Handshake(SyntheticHello.Body([SyntheticHello.ServerName("origin.test")]));
        byte[] records = [.. TlsRecords.Wrap(handshake[..10], [10]), 22, 3, 3, 0, 0, .. TlsRecords.Wrap(handshake[10..], [1000])];

        Assert.Equal(ClientHelloStatus.Malformed, Parse(records));
    }

    [Fact]
    public void Bytes_after_the_hello_in_its_own_record_are_malformed()
    {
        // RFC 8446 §5.1: a ClientHello must end on a record boundary.
        var handshake = SyntheticHello.Handshake(SyntheticHello.Body([SyntheticHello.ServerName("origin.test")]));
        byte[] records = TlsRecords.Wrap([.. handshake, 1, 0, 0, 0], [1000]);

        Assert.Equal(ClientHelloStatus.Malformed, Parse(records));
    }

    [Fact]
    public void Handshake_header_split_over_records_is_reassembled()
    {
        var handshake = SyntheticHello.Handshake(SyntheticHello.Body([SyntheticHello.ServerName("split.example")]));
        byte[] records = TlsRecords.Wrap(handshake, [2, 1, 5]);

        var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max);

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal("split.example", result.ServerName);
    }

    private static ClientHelloStatus Parse(byte[] bytes) => ClientHelloParser.Parse(new ReadOnlySequence<byte>(bytes), Max).Status;
}
