using System.Buffers;
using Passage.Relay.Passthrough;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// The relay parses again after every read, so a hello trickled in tiny records must not have its earlier records
/// walked again on each call: the work for the whole hello grows with its records, not with their square.
/// </summary>
public sealed class ClientHelloParserProgressTests
{
    [Fact]
    public void A_hello_in_one_byte_records_read_a_record_at_a_time_is_walked_once()
    {
        var hello = TlsRecords.Refragment(SyntheticHello.WithServerName("origin.test"), 1);
        var records = Enumerable.Range(0, hello.Length / 6).Select(i => new CountingMemory(hello.AsMemory(i * 6, 6))).ToArray();
        var progress = default(ClientHelloProgress);
        ClientHelloResult result = default;
        for (int count = 1; count <= records.Length; count++)
        {
            result = ClientHelloParser.Resume(TestSequences.FromChunks(records.Take(count).Select(r => r.Bytes)), 1 << 14, ref progress);
            Assert.Equal(count == records.Length ? ClientHelloStatus.Complete : ClientHelloStatus.Incomplete, result.Status);
        }

        Assert.Equal("origin.test", result.ServerName);
        Assert.Equal(hello.Length, result.BytesExamined);

        // Each record's bytes are looked at when it arrives and once more to copy the body out, plus a few: walked
        // again on every call, the first records alone would be looked at hundreds of times.
        Assert.InRange(records.Max(r => r.Reads), 1, 4);
    }

    [Fact]
    public void Resuming_gives_the_verdicts_parsing_from_the_start_gives()
    {
        var hello = TlsRecords.Refragment(SyntheticHello.WithServerName("origin.test"), 1, 2, 3, 50);
        var progress = default(ClientHelloProgress);
        for (int filled = 1; filled <= hello.Length; filled++)
        {
            var sequence = new ReadOnlySequence<byte>(hello, 0, filled);
            var resumed = ClientHelloParser.Resume(sequence, 1 << 14, ref progress);
            var fresh = ClientHelloParser.Parse(sequence, 1 << 14);
            Assert.Equal(fresh.ToString(), resumed.ToString());
            Assert.Equal(fresh.ServerName, resumed.ServerName);
        }
    }

    /// <summary>Memory that counts how often its bytes are asked for.</summary>
    private sealed class CountingMemory : MemoryManager<byte>
    {
        private readonly byte[] _bytes;

        public CountingMemory(ReadOnlyMemory<byte> bytes)
        {
            _bytes = bytes.ToArray();
            Bytes = CreateMemory(_bytes.Length); // unlike Memory, which asks for the bytes
        }

        public ReadOnlyMemory<byte> Bytes { get; }

        public int Reads { get; private set; }

        public override Span<byte> GetSpan()
        {
            Reads++;
            return _bytes;
        }

        public override MemoryHandle Pin(int elementIndex = 0) => throw new NotSupportedException();

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
