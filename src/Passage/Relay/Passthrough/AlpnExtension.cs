using System.Buffers;

namespace Passage.Relay.Passthrough;

/// <summary>
/// Reads the application_layer_protocol_negotiation extension of a ClientHello (RFC 7301 §3.1), so routes can
/// later tell h2 from http/1.1 or acme-tls/1 without terminating TLS.
/// </summary>
internal static class AlpnExtension
{
    /// <summary>
    /// Parses <c>struct { ProtocolName protocol_name_list&lt;2..2^16-1&gt; } ProtocolNameList</c> with
    /// <c>opaque ProtocolName&lt;1..2^8-1&gt;</c>. Returns the names in the client's order (well-known ones as
    /// shared strings, others decoded byte-for-byte as Latin-1), or null when the lengths are inconsistent or a
    /// name is empty ("Empty strings MUST NOT be included").
    /// </summary>
    public static IReadOnlyList<string>? Read(ReadOnlySequence<byte> data)
    {
        var reader = new SequenceReader<byte>(data);
        if (!reader.TryReadBigEndian(out short rawListLength) || (ushort)rawListLength != reader.Remaining || reader.Remaining < 2)
        {
            return null;
        }

        // First pass: validate and count, so the array is allocated once at its final size.
        var list = reader;
        int count = 0;
        while (!reader.End)
        {
            if (!reader.TryRead(out byte length) || length == 0 || length > reader.Remaining)
            {
                return null;
            }

            reader.Advance(length);
            count++;
        }

        var names = new string[count];
        Span<byte> buffer = stackalloc byte[byte.MaxValue];
        for (int i = 0; i < count; i++)
        {
            list.TryRead(out byte length);
            var name = buffer[..length];
            list.TryCopyTo(name);
            list.Advance(length);
            names[i] = Decode(name);
        }

        return names;
    }

    private static string Decode(ReadOnlySpan<byte> name) => name switch
    {
        // IANA "TLS Application-Layer Protocol Negotiation (ALPN) Protocol IDs" most often seen.
        [(byte)'h', (byte)'2'] => "h2",
        [(byte)'h', (byte)'3'] => "h3",
        _ when name.SequenceEqual("http/1.1"u8) => "http/1.1",
        _ when name.SequenceEqual("http/1.0"u8) => "http/1.0",
        _ when name.SequenceEqual("acme-tls/1"u8) => "acme-tls/1",
        _ => System.Text.Encoding.Latin1.GetString(name),
    };
}
