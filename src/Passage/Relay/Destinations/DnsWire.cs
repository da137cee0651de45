using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Passage.Relay.Destinations;

/// <summary>What a DNS server said to one question, as <see cref="DnsWire.TryParseReply"/> read it.</summary>
internal readonly record struct DnsReply
{
    /// <summary>
    /// The response code (RFC 1035 §4.1.1): 0 no error, 1 format error, 2 server failure, 3 no such name, 4 not
    /// implemented, 5 refused; with the upper 8 bits of an OPT record (RFC 6891 §6.1.3), so 16 and above are extended
    /// codes (16 BADVERS); <see cref="DnsWire.RcodeBadOpt"/> when the reply's OPT record is malformed.
    /// </summary>
    public int Rcode { get; init; }

    /// <summary>The reply carried an OPT record: its server speaks EDNS (RFC 6891).</summary>
    public bool Edns { get; init; }

    /// <summary>
    /// An error reply that left the question out, so known by its ID alone: as easy to forge as any failure, it fails
    /// the question at its server and no more (it does not say the server cannot take EDNS, RFC 6891 §7).
    /// </summary>
    public bool WithoutQuestion { get; init; }

    /// <summary>The TC bit: the answer did not fit in the datagram; ask again over TCP.</summary>
    public bool Truncated { get; init; }

    /// <summary>
    /// The addresses of the asked type at the end of the CNAME chain that starts at the question's name: the first
    /// <see cref="DnsAnswer.MaxAddressesPerFamily"/> of them.
    /// </summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; }

    /// <summary>The smallest TTL of the records that led to <see cref="Addresses"/> (the chain's CNAMEs included); null without addresses.</summary>
    public TimeSpan? Ttl { get; init; }

    /// <summary>
    /// How long the absence of an answer may be kept (RFC 2308 §5: the SOA's TTL or its MINIMUM, the smaller, and no
    /// longer than the TTLs of the CNAMEs that led to it); null without an SOA of the chain's end or a parent of it.
    /// </summary>
    public TimeSpan? NegativeTtl { get; init; }
}

/// <summary>
/// Writes DNS queries and reads replies (RFC 1035), for the relay's own stub resolver: only what it asks
/// (one question, type A or AAAA, class IN, recursion desired) and only what it needs from the answer.
/// </summary>
/// <remarks>
/// A reply is read defensively, as bytes from the network: every length is checked against the message,
/// compression pointers must point backward and are followed at most 64 times in one name (a backward pointer
/// can still loop, through a label before it; the count and the 255-byte limit on names end that), a record that
/// cannot be read makes the whole reply unreadable, whichever section it is in (past it, the OPT record that may
/// change the response code cannot be found), and a reply
/// whose ID, flags or question do not match what was asked is not the reply (a late or forged datagram),
/// so <see cref="TryParseReply"/> refuses it and the caller waits on; only an error reply without a question is
/// known by its ID alone. Names are compared as text in which
/// label bytes other than letters, digits, <c>-</c> and <c>_</c> are escaped (<c>\DDD</c>), so a label
/// holding a dot cannot pass for two labels; letters compare ignoring case, as DNS does.
/// </remarks>
internal static class DnsWire
{
    /// <summary>Record type A (an IPv4 address).</summary>
    public const ushort TypeA = 1;

    /// <summary>Record type CNAME (an alias).</summary>
    public const ushort TypeCname = 5;

    /// <summary>Record type SOA (start of authority; its MINIMUM bounds negative caching).</summary>
    public const ushort TypeSoa = 6;

    /// <summary>Record type AAAA (an IPv6 address).</summary>
    public const ushort TypeAaaa = 28;

    /// <summary>Record type OPT: the EDNS pseudo-record of the additional section (RFC 6891 §6.1).</summary>
    public const ushort TypeOpt = 41;

    /// <summary>Class IN.</summary>
    public const ushort ClassIn = 1;

    /// <summary>The largest reply over UDP without EDNS (RFC 1035 §2.3.4); larger answers come truncated.</summary>
    public const int MaxUdpReply = 512;

    /// <summary>
    /// The UDP payload a query with EDNS advertises: replies up to this size come whole over UDP, larger ones
    /// truncated. 1232 bytes fit an IPv6 datagram in the minimum MTU of 1280 without fragments (DNS Flag Day 2020).
    /// </summary>
    public const int EdnsUdpPayload = 1232;

    /// <summary>The largest query written: a header, a 255-byte name, the question's type and class, and an OPT record.</summary>
    public const int MaxQuery = HeaderLength + MaxNameLength + 4 + OptLength;

    /// <summary>No error.</summary>
    public const int RcodeNoError = 0;

    /// <summary>Format error: the server could not read the query (an old one, a query with OPT).</summary>
    public const int RcodeFormatError = 1;

    /// <summary>The name does not exist (authoritative for every type).</summary>
    public const int RcodeNameError = 3;

    /// <summary>Not implemented: the server does not do this kind of query (an old one, a query with OPT).</summary>
    public const int RcodeNotImplemented = 4;

    /// <summary>
    /// Not a response code of the protocol: the reply's OPT record is malformed (two of them, not owned by the root,
    /// or options running past its data), so what the server meant cannot be known; a failure of that server.
    /// </summary>
    public const int RcodeBadOpt = -1;

    private const int OptLength = 11;

    private const int HeaderLength = 12;
    private const int MaxNameLength = 255;
    private const int MaxCnameHops = 16;
    private const int MaxPointerJumps = 64;

    /// <summary>
    /// Writes a query for <paramref name="name"/> (A-labels, a final dot optional) into <paramref name="destination"/>,
    /// with an OPT record when <paramref name="edns"/> (RFC 6891: version 0, <see cref="EdnsUdpPayload"/>, DNSSEC OK off).
    /// </summary>
    /// <returns>The query's length.</returns>
    /// <exception cref="ArgumentException">The name is empty, has an empty or too long label, is too long, or is not ASCII.</exception>
    public static int WriteQuery(Span<byte> destination, ushort id, string name, ushort type, bool edns = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, MaxQuery, nameof(destination));
        BinaryPrimitives.WriteUInt16BigEndian(destination, id);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], 0x0100); // standard query, recursion desired
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], 1); // one question
        destination[6..HeaderLength].Clear();
        destination[11] = edns ? (byte)1 : (byte)0; // one additional record: the OPT
        int at = HeaderLength;
        string trimmed = name.EndsWith('.') ? name[..^1] : name;
        if (trimmed.Length == 0)
        {
            throw new ArgumentException("A DNS name has at least one label.", nameof(name));
        }

        foreach (Range range in trimmed.AsSpan().Split('.'))
        {
            ReadOnlySpan<char> label = trimmed.AsSpan(range);
            if (label.Length is 0 or > 63 || !Ascii.IsValid(label))
            {
                throw new ArgumentException($"'{name}' has an empty, too long or non-ASCII label.", nameof(name));
            }

            if (at + 1 + label.Length + 1 > HeaderLength + MaxNameLength)
            {
                throw new ArgumentException($"'{name}' is longer than 255 bytes.", nameof(name));
            }

            destination[at++] = (byte)label.Length;
            at += Encoding.ASCII.GetBytes(label, destination[at..]);
        }

        destination[at++] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[at..], type);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 2)..], ClassIn);
        at += 4;
        if (edns)
        {
            // The root's name, the type, the payload size in the class; extended RCODE, version and flags (DO off) zero; no options.
            destination[at] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 1)..], TypeOpt);
            BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 3)..], EdnsUdpPayload);
            destination[(at + 5)..(at + OptLength)].Clear();
            at += OptLength;
        }

        return at;
    }

    /// <summary>The ID of a message, or -1 when it is shorter than a header.</summary>
    public static int ReadId(ReadOnlySpan<byte> message) =>
        message.Length < HeaderLength ? -1 : BinaryPrimitives.ReadUInt16BigEndian(message);

    /// <summary>The record type asked in <paramref name="query"/> (one written by <see cref="WriteQuery"/>).</summary>
    public static ushort QueryType(ReadOnlySpan<byte> query)
    {
        int at = HeaderLength;
        while (query[at] != 0)
        {
            at += 1 + query[at];
        }

        return BinaryPrimitives.ReadUInt16BigEndian(query[(at + 1)..]);
    }

    /// <summary>
    /// Reads <paramref name="message"/> as the reply to the question <paramref name="name"/>/<paramref name="type"/>
    /// sent with <paramref name="id"/>. False when it is not that reply or cannot be read; a truncated reply
    /// is read as far as its question and returned with <see cref="DnsReply.Truncated"/>. An error reply (other than
    /// no such name) without a question section is that error when its ID is <paramref name="id"/>.
    /// </summary>
    public static bool TryParseReply(ReadOnlySpan<byte> message, ushort id, string name, ushort type, out DnsReply reply)
    {
        reply = default;
        if (message.Length < HeaderLength || BinaryPrimitives.ReadUInt16BigEndian(message) != id)
        {
            return false;
        }

        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        int questions = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        int answers = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        int authorities = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        int additionals = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        bool isResponse = (flags & 0x8000) != 0;
        int opcode = (flags >> 11) & 0xF;
        int rcode = flags & 0xF;
        if (!isResponse || opcode != 0)
        {
            return false;
        }

        if (questions == 0 && rcode is not (RcodeNoError or RcodeNameError))
        {
            // An error without the question (FORMERR, SERVFAIL, NOTIMP, REFUSED, as some servers send them): known
            // by its ID alone, and taken only as this server failing the question, never as an answer. The name
            // adds nothing a forger lacks (the one who asks for a name knows it), so the ID and the port are all
            // there is to guess either way; and a forged failure could as well have carried the question.
            reply = new DnsReply { Rcode = rcode, WithoutQuestion = true, Addresses = [] };
            return true;
        }

        if (questions != 1)
        {
            return false;
        }

        int at = HeaderLength;
        if (!TryReadName(message, ref at, out string? asked) || at + 4 > message.Length
            || BinaryPrimitives.ReadUInt16BigEndian(message[at..]) != type
            || BinaryPrimitives.ReadUInt16BigEndian(message[(at + 2)..]) != ClassIn
            || asked != Canonical(name))
        {
            return false;
        }

        at += 4;
        bool truncated = (flags & 0x0200) != 0;
        if (truncated)
        {
            reply = new DnsReply { Rcode = rcode, Truncated = true, Addresses = [] };
            return true;
        }

        var records = new List<Record>(Math.Min(answers, message.Length / 11)); // a record takes 11 bytes at least
        for (int i = 0; i < answers; i++)
        {
            if (!TryReadRecord(message, ref at, out Record record))
            {
                return false;
            }

            records.Add(record);
        }

        // Follow the chain from the asked name; the addresses are those owned by its end.
        string owner = asked; // the question's name, as the chain starts from it
        uint ttl = uint.MaxValue;
        for (int hop = 0; hop < MaxCnameHops; hop++)
        {
            int alias = records.FindIndex(r => r.Type == TypeCname && r.Target is not null && r.Owner == owner);
            if (alias < 0)
            {
                break;
            }

            ttl = Math.Min(ttl, records[alias].Ttl);
            owner = records[alias].Target!;
            records.RemoveAt(alias); // a chain that comes back to a name it passed ends there
        }

        uint chainTtl = ttl; // uint.MaxValue without a chain
        var addresses = new List<IPAddress>();
        foreach (Record record in records)
        {
            if (record.Type == type && record.Owner == owner && record.Address is { } address && !addresses.Contains(address))
            {
                addresses.Add(address);
                ttl = Math.Min(ttl, record.Ttl);
                if (addresses.Count == DnsAnswer.MaxAddressesPerFamily)
                {
                    break;
                }
            }
        }

        // Only an SOA of the zone the chain's end is in speaks of its absence: one of another zone is not taken
        // (a server's error, or records slipped in), and of several that fit the shortest is.
        uint? negativeTtl = null;
        for (int i = 0; i < authorities; i++)
        {
            if (!TryReadRecord(message, ref at, out Record record))
            {
                // Past an unreadable record nothing can be found: not the additional section, nor an OPT whose
                // extended RCODE (BADVERS, say) would fail this answer. Unreadable as a whole, as with any section.
                return false;
            }

            if (record.Type == TypeSoa && record.Minimum is { } minimum && IsAtOrUnder(owner, record.Owner))
            {
                negativeTtl = Math.Min(negativeTtl ?? uint.MaxValue, Math.Min(record.Ttl, minimum));
            }
        }

        // The additional section matters only for its OPT record, whose TTL field holds the RCODE's upper 8 bits
        // (RFC 6891 §6.1.3): a BADVERS, or a code this resolver does not know, fails the question at this server.
        bool edns = false;
        bool badOpt = false;
        int extended = 0;
        for (int i = 0; i < additionals; i++)
        {
            if (!TryReadRecord(message, ref at, out Record record))
            {
                return false; // an OPT that may be in it cannot be read, nor then the reply
            }

            if (record.Type == TypeOpt)
            {
                // A second OPT, one not owned by the root, or options past its data: what the server meant is unknown.
                badOpt |= edns || record.Owner.Length != 0 || record.Malformed;
                extended = (int)(record.Ttl >> 24);
                edns = true;
            }
        }

        reply = new DnsReply
        {
            Rcode = badOpt ? RcodeBadOpt : (extended << 4) | rcode,
            Edns = edns,
            Addresses = addresses,
            Ttl = addresses.Count > 0 ? TimeSpan.FromSeconds(ttl) : null,

            // Reached through CNAMEs, the absence lasts no longer than the chain that led to it (RFC 2308 §5).
            NegativeTtl = negativeTtl is { } seconds ? TimeSpan.FromSeconds(Math.Min(seconds, chainTtl)) : null,
        };
        return true;
    }

    /// <summary>Whether <paramref name="name"/> is <paramref name="zone"/> or under it (both canonical; "" is the root).</summary>
    private static bool IsAtOrUnder(string name, string zone) =>
        zone.Length == 0 || name == zone || (name.Length > zone.Length && name[^(zone.Length + 1)] == '.' && name.EndsWith(zone, StringComparison.Ordinal));

    /// <summary>A resource record, as far as it matters here; <paramref name="Malformed"/>: an OPT whose options run past its data.</summary>
    private readonly record struct Record(string Owner, ushort Type, uint Ttl, IPAddress? Address, string? Target, uint? Minimum, bool Malformed = false);

    private static bool TryReadRecord(ReadOnlySpan<byte> message, ref int at, out Record record)
    {
        record = default;
        if (!TryReadName(message, ref at, out string? owner) || at + 10 > message.Length)
        {
            return false;
        }

        ushort type = BinaryPrimitives.ReadUInt16BigEndian(message[at..]);
        ushort @class = BinaryPrimitives.ReadUInt16BigEndian(message[(at + 2)..]);
        uint ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(at + 4)..]);
        int length = BinaryPrimitives.ReadUInt16BigEndian(message[(at + 8)..]);
        at += 10;
        if (at + length > message.Length)
        {
            return false;
        }

        int end = at + length;
        if (type == TypeOpt)
        {
            // Its class is the sender's UDP payload and its TTL the extended RCODE, version and flags, all kept as
            // they are; its data is options, each a code, a length and that many bytes, which must end with it.
            int option = at;
            while (option + 4 <= end)
            {
                option += 4 + BinaryPrimitives.ReadUInt16BigEndian(message[(option + 2)..]);
            }

            at = end;
            record = new Record(owner, type, ttl, null, null, null, Malformed: option != end);
            return true;
        }

        // RFC 2181 §8: a TTL with the top bit set is read as zero.
        ttl = ttl > int.MaxValue ? 0 : ttl;
        IPAddress? address = null;
        string? target = null;
        uint? minimum = null;
        if (@class == ClassIn)
        {
            switch (type)
            {
                case TypeA when length == 4:
                case TypeAaaa when length == 16:
                    address = new IPAddress(message.Slice(at, length));
                    break;
                case TypeCname:
                    int nameAt = at;
                    if (!TryReadName(message[..end], ref nameAt, out target))
                    {
                        return false;
                    }

                    break;
                case TypeSoa:
                    int soaAt = at;
                    if (TryReadName(message[..end], ref soaAt, out _) && TryReadName(message[..end], ref soaAt, out _) && soaAt + 20 <= end)
                    {
                        uint value = BinaryPrimitives.ReadUInt32BigEndian(message[(soaAt + 16)..]);
                        minimum = value > int.MaxValue ? 0 : value;
                    }

                    break;
            }
        }

        at = end;
        record = new Record(owner, type, ttl, address, target, minimum);
        return true;
    }

    /// <summary>
    /// Reads a possibly compressed name at <paramref name="at"/>, leaving <paramref name="at"/> after it in the
    /// message (after the first pointer, where there is one). The name comes back canonical: lower case, escaped.
    /// </summary>
    private static bool TryReadName(ReadOnlySpan<byte> message, ref int at, out string name)
    {
        name = "";
        var text = new StringBuilder();
        int position = at;
        int wireLength = 1;
        int jumps = 0;
        int resume = -1;
        while (true)
        {
            if (position >= message.Length)
            {
                return false;
            }

            byte length = message[position];
            if (length == 0)
            {
                position++;
                break;
            }

            switch (length & 0xC0)
            {
                case 0xC0:
                    if (position + 1 >= message.Length)
                    {
                        return false;
                    }

                    int target = ((length & 0x3F) << 8) | message[position + 1];

                    // Only backward, and not too often: a loop through earlier labels ends at the jump count.
                    if (target >= position || ++jumps > MaxPointerJumps)
                    {
                        return false;
                    }

                    if (resume < 0)
                    {
                        resume = position + 2;
                    }

                    position = target;
                    continue;
                case 0x00:
                    break;
                default:
                    return false; // 0x40 and 0x80: extended label types, unused
            }

            wireLength += 1 + length;
            if (wireLength > MaxNameLength || position + 1 + length > message.Length)
            {
                return false;
            }

            if (text.Length > 0)
            {
                text.Append('.');
            }

            foreach (byte b in message.Slice(position + 1, length))
            {
                AppendCanonical(text, b);
            }

            position += 1 + length;
        }

        at = resume >= 0 ? resume : position;
        name = text.ToString();
        return true;
    }

    private static void AppendCanonical(StringBuilder text, byte b)
    {
        if (b is (>= (byte)'a' and <= (byte)'z') or (>= (byte)'0' and <= (byte)'9') or (byte)'-' or (byte)'_')
        {
            text.Append((char)b);
        }
        else if (b is >= (byte)'A' and <= (byte)'Z')
        {
            text.Append((char)(b + 32));
        }
        else
        {
            text.Append('\\').Append(b.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    /// <summary>A name as asked (a final dot optional) in the form <see cref="TryReadName"/> gives.</summary>
    private static string Canonical(string name)
    {
        string trimmed = name.EndsWith('.') ? name[..^1] : name;
        var text = new StringBuilder(trimmed.Length);
        foreach (Range range in trimmed.AsSpan().Split('.'))
        {
            if (text.Length > 0)
            {
                text.Append('.');
            }

            foreach (char c in trimmed.AsSpan(range))
            {
                AppendCanonical(text, (byte)c);
            }
        }

        return text.ToString();
    }
}
