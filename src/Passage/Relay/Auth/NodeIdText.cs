namespace Passage.Relay.Auth;

/// <summary>
/// The text form of a node ID: the SHA-256 of a certificate's SubjectPublicKeyInfo in lower-case
/// base32 (RFC 4648 §6 alphabet), without padding: 52 characters for 32 bytes.
/// </summary>
/// <remarks>
/// A stand-in until the Identity folder's node ID type exists; it should then replace this.
/// </remarks>
internal static class NodeIdText
{
    /// <summary>The length of a node ID's text form.</summary>
    public const int Length = 52;

    /// <summary>The length of a node ID in bytes: one SHA-256 hash.</summary>
    public const int ByteLength = 32;

    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>Encodes bytes as lower-case unpadded base32.</summary>
    public static string Encode(ReadOnlySpan<byte> bytes)
    {
        var text = new char[(bytes.Length * 8 + 4) / 5];
        int bits = 0;
        int buffer = 0;
        int written = 0;
        foreach (byte b in bytes)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                text[written++] = Alphabet[(buffer >> bits) & 31];
            }
        }

        if (bits > 0)
        {
            text[written] = Alphabet[(buffer << (5 - bits)) & 31];
        }

        return new string(text);
    }

    /// <summary>
    /// Decodes the text form of a node ID. Only the canonical form is accepted: exactly
    /// <see cref="Length"/> lower-case characters, with the unused low bits of the last one zero.
    /// </summary>
    /// <param name="text">The text.</param>
    /// <param name="id">Receives the <see cref="ByteLength"/> bytes.</param>
    /// <returns>Whether <paramref name="text"/> is a node ID.</returns>
    public static bool TryDecode(ReadOnlySpan<char> text, Span<byte> id)
    {
        if (text.Length != Length || id.Length < ByteLength)
        {
            return false;
        }

        int bits = 0;
        int buffer = 0;
        int written = 0;
        foreach (char c in text)
        {
            int value = c switch
            {
                >= 'a' and <= 'z' => c - 'a',
                >= '2' and <= '7' => c - '2' + 26,
                _ => -1,
            };
            if (value < 0)
            {
                return false;
            }

            buffer = ((buffer << 5) | value) & 0xfff;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                id[written++] = (byte)(buffer >> bits);
            }
        }

        // 52 characters carry 260 bits: the last 4 must be zero, or two texts would name one ID.
        return (buffer & ((1 << bits) - 1)) == 0;
    }
}
