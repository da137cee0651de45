using System.Buffers;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>The parser runs on every read of every new connection, so it allocates little: the name and the ALPN list.</summary>
public sealed class ClientHelloParserAllocationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Parsing_allocates_only_the_results(bool refragment)
    {
        var hello = await ClientHelloCapture.GetAsync(HelloSource.SslStreamDefault);
        var bytes = refragment ? TlsRecords.Refragment(hello.Bytes, 1, 7, 100) : hello.Bytes;
        var sequence = TestSequences.Split(bytes, bytes.Length / 2);
        ClientHelloParser.Parse(sequence, ClientHelloParser.DefaultMaxHandshakeBytes);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = ClientHelloParser.Parse(sequence, ClientHelloParser.DefaultMaxHandshakeBytes);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(ClientHelloStatus.Complete, result.Status);

        // "origin.test" (~48 bytes) and a two-element string[] (~40 bytes); "h2" and "http/1.1" are shared literals.
        Assert.InRange(allocated, 1, 128);
    }

    [Fact]
    public void Rejections_allocate_nothing()
    {
        var http = new ReadOnlySequence<byte>("GET / HTTP/1.1\r\n"u8.ToArray());
        var partial = new ReadOnlySequence<byte>(new byte[] { 22, 3, 1, 0, 200, 1, 0 });
        ClientHelloParser.Parse(http, 1000);
        ClientHelloParser.Parse(partial, 1000);

        long before = GC.GetAllocatedBytesForCurrentThread();
        ClientHelloParser.Parse(http, 1000);
        ClientHelloParser.Parse(partial, 1000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
