using System.Buffers;
using Passage.Relay.Connect;
using Passage.Tests.Relay.Passthrough;

namespace Passage.Tests.Relay.Connect;

/// <summary>The parser runs after every read of every new connection, so waiting and refusing allocate nothing.</summary>
public sealed class Http1ConnectParserAllocationTests
{
    [Fact]
    public void Incomplete_heads_and_refusals_allocate_nothing()
    {
        ReadOnlySequence<byte>[] inputs =
        [
            new("CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.te"u8.ToArray()),
            TestSequences.Split("CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.te"u8.ToArray(), 10, 30),
            new("GET / HTTP/1.1\r\n"u8.ToArray()),
            new("CONNECT a.test:443 HTTP/1.1\r\nX: 1\r\n folded\r\n"u8.ToArray()),
            new("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic YTpi\r\n"u8.ToArray()),
            new(new byte[] { 0x16, 0x03, 0x01 }),
        ];
        foreach (var input in inputs)
        {
            Http1ConnectParser.Parse(input, Http1ParseLimits.Default);
        }

        for (int i = 0; i < inputs.Length; i++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Http1ConnectParser.Parse(inputs[i], Http1ParseLimits.Default);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.True(allocated == 0, $"input {i}: {allocated} bytes");
        }
    }

    [Fact]
    public void A_complete_head_allocates_only_its_request()
    {
        var head = new ReadOnlySequence<byte>(Heads.Bytes(Heads.Minimal));
        Http1ConnectParser.Parse(head, Http1ParseLimits.Default);

        long before = GC.GetAllocatedBytesForCurrentThread();
        var result = Http1ConnectParser.Parse(head, Http1ParseLimits.Default);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(Http1ParseStatus.Complete, result.Status);

        // The record (~64 bytes), "origin.test" and "origin.test:443" (~48 and ~56 bytes).
        Assert.InRange(allocated, 1, 256);
    }

    /// <summary>
    /// The credential is never made a string (a string cannot be cleared): a complete head with Proxy-Authorization, in one
    /// segment or spread over several, allocates what the same head without it does.
    /// </summary>
    [Fact]
    public void A_credential_in_a_complete_head_allocates_nothing()
    {
        var without = "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\n\r\n"u8.ToArray();
        var with = System.Text.Encoding.ASCII.GetBytes(
            "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\nProxy-Authorization: Bearer " + new string('t', 500) + "\r\n\r\n");
        foreach (var split in new[] { false, true })
        {
            long Allocated(byte[] head)
            {
                var input = split ? TestSequences.Split(head, 10, 40) : new ReadOnlySequence<byte>(head);
                Http1ConnectParser.Parse(input, Http1ParseLimits.Default);
                long before = GC.GetAllocatedBytesForCurrentThread();
                var result = Http1ConnectParser.Parse(input, Http1ParseLimits.Default);
                long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Assert.Equal(Http1ParseStatus.Complete, result.Status);
                return allocated;
            }

            Assert.Equal(Allocated(without), Allocated(with));
        }
    }
}
