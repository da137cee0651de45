using System.Buffers;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// Each length field of real hellos corrupted. A field claiming more than the enclosing structure holds is
/// Malformed once the enclosing structure is complete; only a length that makes the sender owe more records
/// (handshake length, record length) is Incomplete, since the missing bytes might still arrive.
/// </summary>
public sealed class ClientHelloParserLengthTests
{
    private const int Max = ClientHelloParser.DefaultMaxHandshakeBytes;

    public static TheoryData<HelloSource> Sources => ClientHelloCapture.Sources;

    public static TheoryData<HelloSource> SourcesWithServerName =>
        new(Enum.GetValues<HelloSource>().Where(s => s != HelloSource.SslStreamIpTarget));

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Record_length_longer_than_the_hello_is_malformed_at_once(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        int length = TlsRecords.Field(bytes, HelloLayout.RecordLength, 2);

        // RFC 8446 §5.1: the ClientHello must end on a record boundary; no need to wait for the extra byte.
        var corrupt = TlsRecords.WithField(bytes, HelloLayout.RecordLength, 2, length + 1);
        Assert.Equal(ClientHelloStatus.Malformed, Parse(corrupt));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(corrupt[..20]));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Record_length_shorter_than_the_hello_needs_a_handshake_record_next(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        int length = TlsRecords.Field(bytes, HelloLayout.RecordLength, 2);

        foreach (int shorter in new[] { 1, 2, 10, 100 })
        {
            var corrupt = TlsRecords.WithField(bytes, HelloLayout.RecordLength, 2, length - shorter);

            // The byte after the shortened record is read as the next record's content type.
            var expected = corrupt[5 + length - shorter] == 22 ? ClientHelloStatus.Incomplete : ClientHelloStatus.Malformed;
            if (expected == ClientHelloStatus.Malformed)
            {
                Assert.Equal(ClientHelloStatus.Malformed, Parse(corrupt));
            }
            else
            {
                Assert.NotEqual(ClientHelloStatus.Complete, Parse(corrupt));
            }

            // Cut right after the shortened record, the hello is simply unfinished.
            Assert.Equal(ClientHelloStatus.Incomplete, Parse(corrupt[..(5 + length - shorter)]));
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Handshake_length_longer_than_the_record_waits_for_another_record(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        int length = TlsRecords.Field(bytes, HelloLayout.HandshakeLength, 3);

        var corrupt = TlsRecords.WithField(bytes, HelloLayout.HandshakeLength, 3, length + 1);

        Assert.Equal(ClientHelloStatus.Incomplete, Parse(corrupt));

        // ... and a continuation record of one byte completes it, with one byte of junk inside the extensions
        // block, which the body checks then reject.
        Assert.Equal(ClientHelloStatus.Malformed, Parse([.. corrupt, 22, 3, 3, 0, 1, 0]));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Handshake_length_shorter_than_the_record_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        int length = TlsRecords.Field(bytes, HelloLayout.HandshakeLength, 3);

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, HelloLayout.HandshakeLength, 3, length - 1)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, HelloLayout.HandshakeLength, 3, 10)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, HelloLayout.HandshakeLength, 3, 10)[..9]));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Handshake_length_over_the_bound_is_too_large_from_the_header_alone(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        int length = TlsRecords.Field(bytes, HelloLayout.HandshakeLength, 3);

        Assert.Equal(ClientHelloStatus.Complete, Parse(bytes, length));
        Assert.Equal(ClientHelloStatus.TooLarge, Parse(bytes, length - 1));
        Assert.Equal(ClientHelloStatus.TooLarge, Parse(bytes[..9], length - 1));
        Assert.Equal(ClientHelloStatus.Incomplete, Parse(bytes[..8], length - 1));
        Assert.Equal(ClientHelloStatus.TooLarge, Parse(TlsRecords.WithField(bytes, HelloLayout.HandshakeLength, 3, 0xFFFFFF)[..9]));

        // With one-byte records the header is complete after the fourth record.
        var oneByteRecords = TlsRecords.Refragment(bytes, 1);
        Assert.Equal(ClientHelloStatus.Incomplete, Parse(oneByteRecords[..(6 * 3)], length - 1));
        Assert.Equal(ClientHelloStatus.TooLarge, Parse(oneByteRecords[..(6 * 4)], length - 1));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Session_id_length_out_of_range_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, HelloLayout.SessionIdLength, 1, 33)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, HelloLayout.SessionIdLength, 1, 255)));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Cipher_suites_length_odd_empty_or_too_long_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        var layout = new HelloLayout(bytes);
        int length = TlsRecords.Field(bytes, layout.CipherSuitesLength, 2);

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CipherSuitesLength, 2, length + 1)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CipherSuitesLength, 2, length - 1)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CipherSuitesLength, 2, 0)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CipherSuitesLength, 2, 0xFFFE)));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Compression_methods_length_empty_or_too_long_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        var layout = new HelloLayout(bytes);

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CompressionLength, 1, 0)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.CompressionLength, 1, 2)));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Extensions_block_length_not_matching_the_rest_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        var layout = new HelloLayout(bytes);
        int length = TlsRecords.Field(bytes, layout.ExtensionsLength, 2);

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.ExtensionsLength, 2, length + 1)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.ExtensionsLength, 2, length - 1)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, layout.ExtensionsLength, 2, 0)));
    }

    [Theory]
    [MemberData(nameof(SourcesWithServerName))]
    public async Task Server_name_lengths_off_by_one_are_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;
        var layout = new HelloLayout(bytes);
        Assert.True(layout.HostNameLength > 0);

        foreach (var (offset, name) in new[] { (layout.ServerNameExtensionLength, "extension"), (layout.ServerNameListLength, "list"), (layout.HostNameLength, "host name") })
        {
            int length = TlsRecords.Field(bytes, offset, 2);
            foreach (int delta in new[] { -1, 1, 0x100 })
            {
                var status = Parse(TlsRecords.WithField(bytes, offset, 2, length + delta));
                Assert.True(status == ClientHelloStatus.Malformed, $"{name} length {length}{delta:+#;-#}: {status}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Other_handshake_types_are_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;

        // RFC 8446 §4.1.2: the client's first message is the ClientHello; 2 is server_hello.
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, 5, 1, 2)));
        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, 5, 1, 2)[..6]));
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Legacy_version_with_a_major_other_than_3_is_malformed(HelloSource source)
    {
        var bytes = (await ClientHelloCapture.GetAsync(source)).Bytes;

        Assert.Equal(ClientHelloStatus.Malformed, Parse(TlsRecords.WithField(bytes, 9, 1, 2)));
    }

    [Fact]
    public void Hello_larger_than_one_record_is_reassembled_within_the_bound()
    {
        // 20 000 bytes of an unknown extension push the body over 2^14, so it must span two records.
        var body = SyntheticHello.Body([(0xFF01, new byte[20_000]), SyntheticHello.ServerName("big.example")]);
        var records = SyntheticHello.Records(body);

        var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), 32 * 1024);
        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal("big.example", result.ServerName);
        Assert.Equal(records.Length, result.BytesExamined);

        Assert.Equal(ClientHelloStatus.TooLarge, ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), ClientHelloParser.DefaultMaxHandshakeBytes).Status);
    }

    [Fact]
    public void Negative_bound_is_a_caller_bug()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => ClientHelloParser.Parse(ReadOnlySequence<byte>.Empty, -1));
    }

    private static ClientHelloStatus Parse(byte[] bytes, int max = Max) => ClientHelloParser.Parse(new ReadOnlySequence<byte>(bytes), max).Status;
}
