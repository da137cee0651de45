using System.Buffers;
using System.Net;

namespace Passage.Relay.Passthrough;

/// <summary>
/// Reads the server_name extension of a ClientHello (RFC 6066 §3) and checks its host name.
/// </summary>
/// <remarks>
/// Host name rules, chosen for a relay that only compares the name with its routes:
/// <list type="bullet">
/// <item>ASCII letters, digits, hyphen and underscore, in dot-separated labels of 1..63 characters, 1..253 in
/// all (RFC 1035 §2.3.4). Underscore is accepted because real deployments put it in names (service labels,
/// some internal hosts) and origins' TLS stacks accept it; hyphens are accepted anywhere in a label for the same
/// reason. Any other byte (space, '*', '/', non-ASCII, controls) makes the hello malformed: RFC 6066 §3 says the
/// name is ASCII, and routing must never see such a name.</item>
/// <item>One trailing dot is removed (RFC 6066 §3 says to send none, yet "example.com." names the same host).</item>
/// <item>IP literals are forbidden in HostName by RFC 6066 §3. They are ignored — treated as no SNI — rather than
/// rejected, so a sloppy client still reaches a fixed upstream, and an IP is never used as a route name. A name
/// whose last label is numeric (decimal, or 0x hex) is taken as IPv4 in any of the forms resolvers accept
/// ("1.2.3.4", "127.1", "0x7f.1"), as the WHATWG URL standard does; a name with ':' that parses as IPv6
/// (optionally in brackets) is IPv6.</item>
/// <item>The returned name is lower case (DNS names are case-insensitive, RFC 4343).</item>
/// </list>
/// </remarks>
internal static class ServerNameExtension
{
    /// <summary>Longest HostName examined: 253 characters plus the optional trailing dot.</summary>
    private const int MaxWireLength = TlsWire.MaxHostNameLength + 1;

    /// <summary>
    /// Parses <c>struct { ServerName server_name_list&lt;1..2^16-1&gt; } ServerNameList</c> where each
    /// <c>ServerName</c> is a NameType byte and, for host_name, <c>opaque HostName&lt;1..2^16-1&gt;</c>.
    /// </summary>
    /// <param name="data">The extension_data.</param>
    /// <param name="hostName">The lower-cased host name when the outcome is <see cref="ServerNameOutcome.HostName"/>.</param>
    public static ServerNameOutcome Read(ReadOnlySequence<byte> data, out string? hostName)
    {
        hostName = null;
        var reader = new SequenceReader<byte>(data);

        // The list length must cover the rest of extension_data exactly, and the list is not empty.
        if (!reader.TryReadBigEndian(out short rawListLength) || (ushort)rawListLength != reader.Remaining || reader.End)
        {
            return ServerNameOutcome.Malformed;
        }

        bool sawHostName = false;
        var outcome = ServerNameOutcome.NoHostName;
        while (!reader.End)
        {
            // Every name type defined so far is followed by a 2-byte length (RFC 6066 §3 leaves the syntax of
            // future types open; in practice they are opaque<1..2^16-1> like HostName), so unknown entries are
            // skipped by length.
            if (!reader.TryRead(out byte nameType) || !reader.TryReadBigEndian(out short rawNameLength))
            {
                return ServerNameOutcome.Malformed;
            }

            int nameLength = (ushort)rawNameLength;
            if (nameLength == 0 || nameLength > reader.Remaining)
            {
                return ServerNameOutcome.Malformed;
            }

            var name = reader.UnreadSequence.Slice(0, nameLength);
            reader.Advance(nameLength);
            if (nameType != TlsWire.NameTypeHostName)
            {
                continue;
            }

            // RFC 6066 §3: "The ServerNameList MUST NOT contain more than one name of the same name_type."
            if (sawHostName)
            {
                return ServerNameOutcome.Malformed;
            }

            sawHostName = true;
            outcome = ReadHostName(name, out hostName);
        }

        if (outcome != ServerNameOutcome.HostName)
        {
            hostName = null;
        }

        return outcome;
    }

    private static ServerNameOutcome ReadHostName(ReadOnlySequence<byte> wire, out string? hostName)
    {
        hostName = null;
        if (wire.Length > MaxWireLength)
        {
            return ServerNameOutcome.BadHostName;
        }

        Span<byte> buffer = stackalloc byte[MaxWireLength];
        wire.CopyTo(buffer);
        ReadOnlySpan<byte> name = buffer[..(int)wire.Length];
        if (name[^1] == (byte)'.')
        {
            name = name[..^1];
        }

        if (name.IsEmpty || name.Length > TlsWire.MaxHostNameLength)
        {
            return ServerNameOutcome.BadHostName;
        }

        if (name.Contains((byte)':'))
        {
            return IsIPv6Literal(name) ? ServerNameOutcome.IpLiteral : ServerNameOutcome.BadHostName;
        }

        int labelStart = 0;
        for (int i = 0; i <= name.Length; i++)
        {
            if (i < name.Length && name[i] != (byte)'.')
            {
                if (!IsHostNameByte(name[i]))
                {
                    return ServerNameOutcome.BadHostName;
                }

                continue;
            }

            int labelLength = i - labelStart;
            if (labelLength is 0 or > TlsWire.MaxLabelLength)
            {
                return ServerNameOutcome.BadHostName;
            }

            labelStart = i + 1;
        }

        int lastDot = name.LastIndexOf((byte)'.');
        if (IsNumericLabel(name[(lastDot + 1)..]))
        {
            return ServerNameOutcome.IpLiteral;
        }

        Span<char> chars = stackalloc char[name.Length];
        for (int i = 0; i < name.Length; i++)
        {
            byte b = name[i];
            chars[i] = (char)(b is >= (byte)'A' and <= (byte)'Z' ? b + ('a' - 'A') : b);
        }

        hostName = new string(chars);
        return ServerNameOutcome.HostName;
    }

    private static bool IsHostNameByte(byte b) =>
        b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_';

    /// <summary>
    /// True for a last label that makes the name an IPv4 address in some resolver's eyes: all decimal digits, or
    /// "0x" followed by hex digits (WHATWG URL standard, "ends in a number").
    /// </summary>
    private static bool IsNumericLabel(ReadOnlySpan<byte> label)
    {
        if (label.Length >= 2 && label[0] == (byte)'0' && (label[1] | 0x20) == (byte)'x')
        {
            foreach (byte b in label[2..])
            {
                if (!char.IsAsciiHexDigit((char)b))
                {
                    return false;
                }
            }

            return true;
        }

        foreach (byte b in label)
        {
            if (!char.IsAsciiDigit((char)b))
            {
                return false;
            }
        }

        return true;
    }

    private static bool IsIPv6Literal(ReadOnlySpan<byte> name)
    {
        if (name.Length >= 2 && name[0] == (byte)'[' && name[^1] == (byte)']')
        {
            name = name[1..^1];
        }

        // The longest IPv6 text form with an embedded IPv4 part is 45 characters; allow a zone id as well.
        if (name.Length > 64)
        {
            return false;
        }

        Span<char> chars = stackalloc char[name.Length];
        for (int i = 0; i < name.Length; i++)
        {
            chars[i] = (char)name[i];
        }

        return IPAddress.TryParse(chars, out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
    }
}
