using System.Buffers;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>ClientHellos from real clients, whole, split across reads, and re-fragmented into records.</summary>
public sealed class ClientHelloParserRealHelloTests
{
    private const int Max = ClientHelloParser.DefaultMaxHandshakeBytes;

    public static TheoryData<HelloSource> Sources => ClientHelloCapture.Sources;

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Whole_hello_is_complete_with_its_server_name_and_alpn(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);

        var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(hello.Bytes), Max);

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(hello.ServerName, result.ServerName);
        Assert.Equal(hello.Bytes.Length, result.BytesExamined);
        Assert.Equal(hello.ApplicationProtocols, result.ApplicationProtocols);
    }

    [Fact]
    public async Task Clients_use_the_record_versions_the_parser_expects()
    {
        // Not a parser rule, a check that the captures exercise what real clients send: the initial ClientHello
        // record commonly says 0x0301 (RFC 8446 §5.1, Appendix D).
        foreach (var hello in await ClientHelloCapture.GetAllAsync())
        {
            Assert.True(hello.Bytes.Length > 100, $"{hello.Source}: {hello.Bytes.Length} bytes");
            Assert.Equal(22, hello.Bytes[0]);
            Assert.Equal(3, hello.Bytes[1]);
            Assert.InRange(hello.Bytes[2], 1, 3);
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Bytes_after_the_hello_are_not_counted(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);
        byte[] changeCipherSpec = [20, 3, 3, 0, 1, 1];
        byte[] earlyData = [23, 3, 3, 0, 3, 9, 9, 9];

        var result = ClientHelloParser.Parse(TestSequences.FromChunks(hello.Bytes, changeCipherSpec, earlyData), Max);

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(hello.Bytes.Length, result.BytesExamined);
        Assert.Equal(hello.ServerName, result.ServerName);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Every_two_segment_split_is_complete(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);

        for (int cut = 0; cut <= hello.Bytes.Length; cut++)
        {
            var result = ClientHelloParser.Parse(TestSequences.Split(hello.Bytes, cut), Max);
            Assert.True(result.Status == ClientHelloStatus.Complete, $"cut at {cut}: {result}");
            Assert.Equal(hello.ServerName, result.ServerName);
            Assert.Equal(hello.Bytes.Length, result.BytesExamined);
        }
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task One_byte_segments_are_complete(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);

        var result = ClientHelloParser.Parse(TestSequences.BytePerSegment(hello.Bytes), Max);

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(hello.ServerName, result.ServerName);
        Assert.Equal(hello.ApplicationProtocols, result.ApplicationProtocols);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Every_prefix_is_incomplete_until_the_last_byte(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);
        AssertIncompleteUntilWhole(hello.Bytes, hello.ServerName);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Every_prefix_read_in_two_segments_is_incomplete(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);

        // Arrival in two reads of uneven size, for every length of the second read.
        for (int length = 0; length < hello.Bytes.Length; length++)
        {
            int cut = length / 3;
            var result = ClientHelloParser.Parse(TestSequences.Split(hello.Bytes[..length], cut), Max);
            Assert.True(result.Status == ClientHelloStatus.Incomplete, $"prefix {length}, cut {cut}: {result}");
        }
    }

    public static TheoryData<HelloSource, int[]> Fragmentations()
    {
        var data = new TheoryData<HelloSource, int[]>();
        foreach (var source in Enum.GetValues<HelloSource>())
        {
            data.Add(source, [1]);
            data.Add(source, [7]);
            data.Add(source, [100]);
            data.Add(source, [1, 7, 100]);
            data.Add(source, [3, 2, 50]);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Fragmentations))]
    public async Task Refragmented_hello_is_complete_and_every_prefix_incomplete(HelloSource source, int[] fragmentSizes)
    {
        var hello = await ClientHelloCapture.GetAsync(source);
        var records = TlsRecords.Refragment(hello.Bytes, fragmentSizes);

        var whole = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max);
        Assert.Equal(ClientHelloStatus.Complete, whole.Status);
        Assert.Equal(hello.ServerName, whole.ServerName);
        Assert.Equal(records.Length, whole.BytesExamined);
        Assert.Equal(hello.ApplicationProtocols, whole.ApplicationProtocols);

        AssertIncompleteUntilWhole(records, hello.ServerName);
    }

    [Theory]
    [MemberData(nameof(Sources))]
    public async Task Refragmented_hello_split_at_every_byte_is_complete(HelloSource source)
    {
        var hello = await ClientHelloCapture.GetAsync(source);
        var records = TlsRecords.Refragment(hello.Bytes, 1, 7, 100);

        for (int cut = 0; cut <= records.Length; cut++)
        {
            var result = ClientHelloParser.Parse(TestSequences.Split(records, cut), Max);
            Assert.True(result.Status == ClientHelloStatus.Complete, $"cut at {cut}: {result}");
            Assert.Equal(hello.ServerName, result.ServerName);
        }

        var bytewise = ClientHelloParser.Parse(TestSequences.BytePerSegment(records), Max);
        Assert.Equal(ClientHelloStatus.Complete, bytewise.Status);
        Assert.Equal(hello.ServerName, bytewise.ServerName);
    }

    [Theory]
    [InlineData(0x0301)]
    [InlineData(0x0302)]
    [InlineData(0x0303)]
    [InlineData(0x0304)]
    [InlineData(0x0300)]
    public async Task Record_versions_from_ssl30_to_tls13_are_accepted(int version)
    {
        var hello = await ClientHelloCapture.GetAsync(HelloSource.SslStreamDefault);
        var records = TlsRecords.Wrap(TlsRecords.Handshake(hello.Bytes), [200], (ushort)version);

        var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max);

        Assert.Equal(ClientHelloStatus.Complete, result.Status);
        Assert.Equal(ClientHelloCapture.TargetHost, result.ServerName);
    }

    [Theory]
    [InlineData(0x0305)]
    [InlineData(0x03FF)]
    public async Task Other_record_versions_are_malformed_even_in_a_later_record(int version)
    {
        var hello = await ClientHelloCapture.GetAsync(HelloSource.SslStreamDefault);
        var handshake = TlsRecords.Handshake(hello.Bytes);
        var records = TlsRecords.Wrap(handshake[..100], [100]).Concat(TlsRecords.Wrap(handshake[100..], [1 << 14], (ushort)version)).ToArray();

        Assert.Equal(ClientHelloStatus.Malformed, ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max).Status);
        Assert.Equal(ClientHelloStatus.Malformed, ClientHelloParser.Parse(new ReadOnlySequence<byte>(records[..108]), Max).Status);
    }

    private static void AssertIncompleteUntilWhole(byte[] records, string? serverName)
    {
        for (int length = 0; length < records.Length; length++)
        {
            var result = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records, 0, length), Max);
            Assert.True(result.Status == ClientHelloStatus.Incomplete, $"prefix {length} of {records.Length}: {result}");
            Assert.Null(result.ServerName);
        }

        var complete = ClientHelloParser.Parse(new ReadOnlySequence<byte>(records), Max);
        Assert.Equal(ClientHelloStatus.Complete, complete.Status);
        Assert.Equal(serverName, complete.ServerName);
    }
}
