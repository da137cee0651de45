using System.Buffers;

namespace Passage.Relay.Connect;

/// <summary>The byte classes of the HTTP/1.1 grammar (RFC 9110 §5.6, RFC 9112) used by the CONNECT head reader.</summary>
internal static class Http1Syntax
{
    /// <summary>RFC 9110 §5.6.2: <c>tchar = "!" / "#" / "$" / "%" / "&amp;" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA</c>.</summary>
    public static readonly SearchValues<byte> TokenChars =
        SearchValues.Create("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>
    /// Bytes a field value may not hold (RFC 9110 §5.5: field-content is VCHAR, SP, HTAB and obs-text): the
    /// control characters other than HTAB, and DEL.
    /// </summary>
    public static readonly SearchValues<byte> ForbiddenInFieldValue = SearchValues.Create(
        [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F,
         0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1A, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x7F]);

    /// <summary>
    /// Bytes of a host name or IPv4 literal in an authority-form target: letters, digits, <c>-</c>, <c>.</c> and
    /// <c>_</c>. A narrowing of RFC 3986 §3.2.2 reg-name to what a DNS name can hold: percent-encoding and the
    /// other sub-delims name no host a relay can reach (internationalised names arrive as A-labels, RFC 5890).
    /// </summary>
    public static readonly SearchValues<byte> HostNameChars =
        SearchValues.Create("-._0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>Bytes of an IPv6 literal inside brackets (RFC 3986 §3.2.2 IPv6address, dotted IPv4 tail included).</summary>
    public static readonly SearchValues<byte> IPv6Chars = SearchValues.Create("0123456789ABCDEFabcdef:."u8);

    /// <summary>
    /// Bytes an authority can hold and the relay take (<see cref="ConnectTarget"/>): those of a host name
    /// (<see cref="HostNameChars"/>), which hold those of an IPv6 literal (<see cref="IPv6Chars"/>), its brackets, and
    /// the colon before a port.
    /// </summary>
    public static readonly SearchValues<byte> AuthorityChars =
        SearchValues.Create("-._:[]0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"u8);

    /// <summary>Request-target bytes (RFC 9112 §3.2): visible ASCII only.</summary>
    public static readonly SearchValues<byte> VisibleAscii = SearchValues.Create(
        "!\"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~"u8);

    /// <summary>Space.</summary>
    public const byte SP = (byte)' ';

    /// <summary>Horizontal tab.</summary>
    public const byte HTAB = (byte)'\t';

    /// <summary>Carriage return.</summary>
    public const byte CR = (byte)'\r';

    /// <summary>Line feed.</summary>
    public const byte LF = (byte)'\n';

    /// <summary>Whether <paramref name="b"/> is optional whitespace (RFC 9110 §5.6.3: OWS is SP or HTAB).</summary>
    public static bool IsWhitespace(byte b) => b is SP or HTAB;

    /// <summary>Where <paramref name="value"/> lies without its leading and trailing OWS.</summary>
    public static Range TrimWhitespace(ReadOnlySpan<byte> value)
    {
        int start = 0;
        while (start < value.Length && IsWhitespace(value[start]))
        {
            start++;
        }

        int end = value.Length;
        while (end > start && IsWhitespace(value[end - 1]))
        {
            end--;
        }

        return new Range(start, end);
    }
}
