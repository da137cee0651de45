namespace Passage.Tests.Relay.Passthrough;

/// <summary>Test-side record layer helpers (RFC 8446 §5.1), written independently of the parser.</summary>
internal static class TlsRecords
{
    /// <summary>The handshake bytes (4-byte header included) carried by consecutive handshake records.</summary>
    public static byte[] Handshake(byte[] records)
    {
        var payload = new List<byte>();
        int offset = 0;
        while (offset < records.Length)
        {
            int length = (records[offset + 3] << 8) | records[offset + 4];
            payload.AddRange(records.AsSpan(offset + 5, length).ToArray());
            offset += 5 + length;
        }

        return [.. payload];
    }

    /// <summary>
    /// Wraps <paramref name="handshake"/> into handshake records whose fragments have the given sizes in turn
    /// (cycling; the last record takes what is left).
    /// </summary>
    public static byte[] Wrap(byte[] handshake, int[] fragmentSizes, ushort recordVersion = 0x0301)
    {
        var output = new List<byte>();
        int offset = 0;
        for (int i = 0; offset < handshake.Length; i++)
        {
            int size = Math.Min(fragmentSizes[i % fragmentSizes.Length], handshake.Length - offset);
            output.AddRange([22, (byte)(recordVersion >> 8), (byte)recordVersion, (byte)(size >> 8), (byte)size]);
            output.AddRange(handshake.AsSpan(offset, size).ToArray());
            offset += size;
        }

        return [.. output];
    }

    /// <summary>Re-fragments the hello held in <paramref name="records"/>.</summary>
    public static byte[] Refragment(byte[] records, params int[] fragmentSizes) => Wrap(Handshake(records), fragmentSizes);

    /// <summary>A copy of <paramref name="bytes"/> with a big-endian field of <paramref name="width"/> bytes set.</summary>
    public static byte[] WithField(byte[] bytes, int offset, int width, int value)
    {
        var copy = (byte[])bytes.Clone();
        for (int i = width - 1; i >= 0; i--)
        {
            copy[offset + i] = (byte)value;
            value >>= 8;
        }

        return copy;
    }

    /// <summary>Reads a big-endian field.</summary>
    public static int Field(byte[] bytes, int offset, int width)
    {
        int value = 0;
        for (int i = 0; i < width; i++)
        {
            value = (value << 8) | bytes[offset + i];
        }

        return value;
    }
}
