using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Net;

namespace Passage.Relay.Destinations;

/// <summary>
/// A strict parser for every IPv4 literal form that resolvers accept: the inet_aton forms of POSIX
/// <c>inet_addr</c> (also what the WHATWG URL standard's IPv4 parser accepts), so that a host such as
/// <c>0x7f.1</c> or <c>2130706433</c> is recognised as the address it is, never sent to DNS.
/// </summary>
/// <remarks>
/// One to four parts separated by dots. Each part is decimal, octal (a leading <c>0</c>) or hexadecimal
/// (a leading <c>0x</c> or <c>0X</c> and at least one hex digit). The last part fills all the bits that
/// the earlier parts, one byte each, leave: <c>a</c> (32 bits), <c>a.b</c> (8.24), <c>a.b.c</c> (8.8.16),
/// <c>a.b.c.d</c> (8.8.8.8). Anything out of range, empty parts, signs, spaces and a trailing dot are
/// rejected.
/// </remarks>
internal static class Ipv4Literal
{
    /// <summary>Parses <paramref name="text"/> as an IPv4 literal in any inet_aton form.</summary>
    /// <param name="text">The whole host, nothing around it.</param>
    /// <param name="address">The address, when the text is one.</param>
    /// <returns>Whether <paramref name="text"/> is an IPv4 literal.</returns>
    public static bool TryParse(ReadOnlySpan<char> text, [NotNullWhen(true)] out IPAddress? address)
    {
        address = null;
        Span<uint> parts = stackalloc uint[4];
        int count = 0;
        foreach (Range range in text.Split('.'))
        {
            if (count == parts.Length || !TryParsePart(text[range], out parts[count]))
            {
                return false;
            }

            count++;
        }

        uint value = 0;
        for (int i = 0; i < count - 1; i++)
        {
            if (parts[i] > byte.MaxValue)
            {
                return false;
            }

            value |= parts[i] << (8 * (3 - i));
        }

        uint last = parts[count - 1];
        int lastBits = 8 * (5 - count);
        if (lastBits < 32 && last >> lastBits != 0)
        {
            return false;
        }

        value |= last;
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        address = new IPAddress(bytes);
        return true;
    }

    private static bool TryParsePart(ReadOnlySpan<char> part, out uint value)
    {
        value = 0;
        uint radix = 10;
        if (part.Length >= 2 && part[0] == '0' && (part[1] == 'x' || part[1] == 'X'))
        {
            radix = 16;
            part = part[2..];
        }
        else if (part.Length >= 2 && part[0] == '0')
        {
            radix = 8;
            part = part[1..];
        }

        if (part.IsEmpty)
        {
            return false;
        }

        ulong accumulated = 0;
        foreach (char c in part)
        {
            uint digit = c switch
            {
                >= '0' and <= '9' => (uint)(c - '0'),
                >= 'a' and <= 'f' => (uint)(c - 'a' + 10),
                >= 'A' and <= 'F' => (uint)(c - 'A' + 10),
                _ => uint.MaxValue,
            };
            if (digit >= radix)
            {
                return false;
            }

            // Leading zeros never grow the value, so a long run of them is harmless.
            accumulated = accumulated * radix + digit;
            if (accumulated > uint.MaxValue)
            {
                return false;
            }
        }

        value = (uint)accumulated;
        return true;
    }
}
