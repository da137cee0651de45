using System.Buffers;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>Builds multi-segment <see cref="ReadOnlySequence{T}"/>s, as a pipe would hand them over.</summary>
internal static class TestSequences
{
    /// <summary>A sequence with one segment per chunk (empty chunks included), in order.</summary>
    public static ReadOnlySequence<byte> FromChunks(IEnumerable<ReadOnlyMemory<byte>> chunks)
    {
        Segment? first = null;
        Segment? last = null;
        foreach (var chunk in chunks)
        {
            var segment = new Segment(chunk, last);
            first ??= segment;
            last = segment;
        }

        return first is null || last is null ? ReadOnlySequence<byte>.Empty : new ReadOnlySequence<byte>(first, 0, last, last.Memory.Length);
    }

    /// <summary>A sequence with one segment per chunk.</summary>
    public static ReadOnlySequence<byte> FromChunks(params byte[][] chunks) => FromChunks(chunks.Select(c => (ReadOnlyMemory<byte>)c));

    /// <summary><paramref name="bytes"/> cut at the given offsets (ascending, each in 0..length).</summary>
    public static ReadOnlySequence<byte> Split(byte[] bytes, params int[] cuts)
    {
        var chunks = new List<ReadOnlyMemory<byte>>();
        int start = 0;
        foreach (int cut in cuts)
        {
            chunks.Add(bytes.AsMemory(start, cut - start));
            start = cut;
        }

        chunks.Add(bytes.AsMemory(start));
        return FromChunks(chunks);
    }

    /// <summary>Every byte in its own segment.</summary>
    public static ReadOnlySequence<byte> BytePerSegment(byte[] bytes) =>
        FromChunks(Enumerable.Range(0, bytes.Length).Select(i => (ReadOnlyMemory<byte>)bytes.AsMemory(i, 1)));

    private sealed class Segment : ReadOnlySequenceSegment<byte>
    {
        public Segment(ReadOnlyMemory<byte> memory, Segment? previous)
        {
            Memory = memory;
            if (previous is not null)
            {
                RunningIndex = previous.RunningIndex + previous.Memory.Length;
                previous.Next = this;
            }
        }
    }
}
