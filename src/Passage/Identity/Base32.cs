using System.Diagnostics.CodeAnalysis;

namespace Passage.Identity;

/// <summary>
/// Base32 as in RFC 4648 §6 (alphabet <c>A-Z2-7</c>), written lower-case and without the
/// <c>=</c> padding of §3.2, as node IDs are. Decoding accepts either case but only the
/// canonical form: no padding, no characters outside the alphabet, no impossible lengths
/// and zero bits in the unused tail (RFC 4648 §3.5), so every byte string has exactly one
/// text and every text at most one byte string.
/// </summary>
internal static class Base32
{
    private const string Alphabet = "abcdefghijklmnopqrstuvwxyz234567";

    /// <summary>Characters needed for <paramref name="byteCount"/> bytes, without padding.</summary>
    public static int GetEncodedLength(int byteCount) => checked((byteCount * 8) + 4) / 5;

    /// <summary>Encodes <paramref name="data"/> lower-case, without padding.</summary>
    public static string Encode(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            return string.Empty;
        }
        var chars = new char[GetEncodedLength(data.Length)];
        var written = 0;
        var buffer = 0;
        var bits = 0;
        foreach (var b in data)
        {
            buffer = (buffer << 8) | b;
            bits += 8;
            while (bits >= 5)
            {
                bits -= 5;
                chars[written++] = Alphabet[(buffer >> bits) & 0x1F];
            }
        }
        if (bits > 0)
        {
            // RFC 4648 §6: the last group is padded with zero bits on the right.
            chars[written++] = Alphabet[(buffer << (5 - bits)) & 0x1F];
        }
        return new string(chars, 0, written);
    }

    /// <summary>
    /// Decodes canonical unpadded base32 in either case. Returns false, never throws, for
    /// padding, characters outside the alphabet, a length no byte string encodes to, or
    /// non-zero bits in the last character's unused tail.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<char> text, [NotNullWhen(true)] out byte[]? data)
    {
        data = null;
        // Lengths 1, 3 and 6 (mod 8) leave 5, 7 or 2 bits over a whole byte: no byte string encodes to them.
        var tail = text.Length % 8;
        if (tail is 1 or 3 or 6)
        {
            return false;
        }
        var result = new byte[text.Length * 5 / 8];
        var written = 0;
        var buffer = 0;
        var bits = 0;
        foreach (var c in text)
        {
            var value = DecodeChar(c);
            if (value < 0)
            {
                return false;
            }
            buffer = (buffer << 5) | value;
            bits += 5;
            if (bits >= 8)
            {
                bits -= 8;
                result[written++] = (byte)(buffer >> bits);
                buffer &= (1 << bits) - 1;
            }
        }
        // RFC 4648 §3.5: the leftover bits are padding and must be zero in canonical text.
        if (buffer != 0)
        {
            return false;
        }
        data = result;
        return true;
    }

    private static int DecodeChar(char c) => c switch
    {
        >= 'a' and <= 'z' => c - 'a',
        >= 'A' and <= 'Z' => c - 'A',
        >= '2' and <= '7' => c - '2' + 26,
        _ => -1,
    };
}
