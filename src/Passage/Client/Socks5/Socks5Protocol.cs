using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Text;

namespace Passage.Client.Socks5;

/// <summary>
/// The SOCKS5 messages (RFC 1928) and username/password sub-negotiation (RFC 1929), as pure
/// functions over the bytes received so far: each returns <see cref="ParseStatus.Incomplete"/>
/// until the message is whole, and never throws for any input.
/// </summary>
internal static class Socks5Protocol
{
    public const byte Version = 5;
    public const byte MethodNoAuth = 0x00;
    public const byte MethodUserPass = 0x02;
    public const byte MethodNoneAcceptable = 0xFF;
    public const byte CommandConnect = 0x01;
    public const byte AddressIPv4 = 0x01;
    public const byte AddressDomain = 0x03;
    public const byte AddressIPv6 = 0x04;

    /// <summary>Reply codes, RFC 1928 §6.</summary>
    public enum Reply : byte
    {
        Succeeded = 0x00,
        GeneralFailure = 0x01,
        NotAllowedByRuleset = 0x02,
        NetworkUnreachable = 0x03,
        HostUnreachable = 0x04,
        ConnectionRefused = 0x05,
        TtlExpired = 0x06,
        CommandNotSupported = 0x07,
        AddressTypeNotSupported = 0x08,
    }

    public enum ParseStatus
    {
        Incomplete,
        Complete,
        Invalid,
    }

    /// <summary>RFC 1928 §3: VER NMETHODS METHODS. Returns whether <paramref name="method"/> is offered.</summary>
    public static ParseStatus ParseGreeting(ReadOnlySequence<byte> data, byte method, out bool offered, out int consumed)
    {
        offered = false;
        consumed = 0;
        var reader = new SequenceReader<byte>(data);
        if (!reader.TryRead(out var version))
        {
            return ParseStatus.Incomplete;
        }
        if (version != Version)
        {
            return ParseStatus.Invalid;
        }
        if (!reader.TryRead(out var count))
        {
            return ParseStatus.Incomplete;
        }
        if (reader.Remaining < count)
        {
            return ParseStatus.Incomplete;
        }
        for (var i = 0; i < count; i++)
        {
            reader.TryRead(out var offeredMethod);
            offered |= offeredMethod == method;
        }
        consumed = (int)reader.Consumed;
        return ParseStatus.Complete;
    }

    /// <summary>
    /// RFC 1929 §2: VER(1) ULEN UNAME PLEN PASSWD: where the name and the password lie in <paramref name="data"/>, counted
    /// from its first byte. Both stay bytes, to be checked as they came (<see cref="LocalUsers"/>): the password never
    /// becomes a string, which could not be cleared.
    /// </summary>
    public static ParseStatus ParseUserPass(ReadOnlySequence<byte> data, out Range user, out Range password, out int consumed)
    {
        user = password = default;
        consumed = 0;
        var reader = new SequenceReader<byte>(data);
        if (!reader.TryRead(out var version))
        {
            return ParseStatus.Incomplete;
        }
        if (version != 1)
        {
            return ParseStatus.Invalid;
        }
        if (!TryReadLengthPrefixed(ref reader, out user) || !TryReadLengthPrefixed(ref reader, out password))
        {
            return ParseStatus.Incomplete;
        }
        consumed = (int)reader.Consumed;
        return ParseStatus.Complete;
    }

    /// <summary>
    /// RFC 1928 §4: VER CMD RSV ATYP DST.ADDR DST.PORT. The host comes back as text: a domain name
    /// exactly as sent (never resolved here), or an address literal. A command other than CONNECT is
    /// refused as such (0x07) whatever follows it, RSV and ATYP included: UDP ASSOCIATE and BIND usually name 0.0.0.0:0,
    /// and a request's first wrong field, in the order of its bytes, is the one its reply names (RFC 1928 §6 sets no
    /// order; OpenSSH's <c>-D</c> judges them so). Of a CONNECT, an RSV other than 0 is a general failure (0x01) and an unknown
    /// ATYP 0x08.
    /// </summary>
    public static ParseStatus ParseRequest(ReadOnlySequence<byte> data, out string host, out int port, out int consumed, out Reply error)
    {
        host = "";
        port = 0;
        consumed = 0;
        error = Reply.GeneralFailure;
        var reader = new SequenceReader<byte>(data);
        // Each byte is judged as it comes: a request that no more bytes can make valid is refused now, not when it is whole.
        if (!reader.TryRead(out var version))
        {
            return ParseStatus.Incomplete;
        }
        if (version != Version)
        {
            return ParseStatus.Invalid;
        }
        if (!reader.TryRead(out var command) || !reader.TryRead(out var reserved))
        {
            return ParseStatus.Incomplete;
        }
        if (reserved != 0)
        {
            error = command == CommandConnect ? Reply.GeneralFailure : Reply.CommandNotSupported;
            return ParseStatus.Invalid;
        }
        if (!reader.TryRead(out var addressType))
        {
            return ParseStatus.Incomplete;
        }
        switch (addressType)
        {
            case AddressIPv4:
            case AddressIPv6:
                var length = addressType == AddressIPv4 ? 4 : 16;
                Span<byte> address = stackalloc byte[16];
                if (!reader.TryCopyTo(address[..length]))
                {
                    return ParseStatus.Incomplete;
                }
                reader.Advance(length);
                host = new IPAddress(address[..length]).ToString();
                break;
            case AddressDomain:
                if (!TryReadLengthPrefixed(ref reader, out var name))
                {
                    return ParseStatus.Incomplete;
                }
                // Latin-1: one character per byte, so that the relay's syntax sees every byte (read below, with the port).
                host = Encoding.Latin1.GetString(data.Slice(name.Start.Value, name.End.Value - name.Start.Value));
                break;
            default:
                error = command == CommandConnect ? Reply.AddressTypeNotSupported : Reply.CommandNotSupported;
                return ParseStatus.Invalid;
        }
        Span<byte> portBytes = stackalloc byte[2];
        if (!reader.TryCopyTo(portBytes))
        {
            return ParseStatus.Incomplete;
        }
        reader.Advance(2);
        port = BinaryPrimitives.ReadUInt16BigEndian(portBytes);
        consumed = (int)reader.Consumed;
        if (command != CommandConnect)
        {
            error = Reply.CommandNotSupported;
            return ParseStatus.Invalid;
        }
        if (addressType == AddressDomain)
        {
            host = AsTheRelayReads(host, port);
        }
        if (host.Length == 0 || port == 0)
        {
            error = Reply.HostUnreachable;
            return ParseStatus.Invalid;
        }
        return ParseStatus.Complete;
    }

    /// <summary>
    /// A domain name as the relay will read it (<see cref="PassageClient.AsRelaysRead"/>), which takes no IPv6 zone and
    /// names an IPv6 literal without its brackets. Empty when the relay would refuse it: such a request is refused here,
    /// without asking a relay.
    /// </summary>
    private static string AsTheRelayReads(string name, int port) => PassageClient.AsRelaysRead(name, port) ?? "";

    /// <summary>The version byte a SOCKS4 request starts with.</summary>
    public const byte Socks4Version = 4;

    /// <summary>A SOCKS4 reply: VN 0, CD 91 (request rejected or failed), port and address zero.</summary>
    public static ReadOnlyMemory<byte> Socks4Rejected { get; } = new byte[] { 0, 91, 0, 0, 0, 0, 0, 0 };

    /// <summary>A reply (RFC 1928 §6) with BND.ADDR 0.0.0.0:0: the relay's side is nobody's business here.</summary>
    public static byte[] ReplyBytes(Reply reply) => [Version, (byte)reply, 0, AddressIPv4, 0, 0, 0, 0, 0, 0];

    /// <summary>A field of one length byte and that many bytes: where its bytes lie, counted from the reader's first byte.</summary>
    private static bool TryReadLengthPrefixed(ref SequenceReader<byte> reader, out Range value)
    {
        value = default;
        if (!reader.TryRead(out var length) || reader.Remaining < length)
        {
            return false;
        }
        var start = (int)reader.Consumed;
        reader.Advance(length);
        value = start..(start + length);
        return true;
    }
}
