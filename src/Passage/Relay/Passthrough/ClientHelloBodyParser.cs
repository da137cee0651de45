using System.Buffers;

namespace Passage.Relay.Passthrough;

/// <summary>
/// Parses a reassembled ClientHello body (the bytes after the 4-byte handshake header). Every length must fit
/// exactly inside the one enclosing it; any inconsistency is <see cref="ClientHelloStatus.Malformed"/>, because
/// the body is already complete and more bytes cannot fix it.
/// </summary>
internal static class ClientHelloBodyParser
{
    /// <summary>
    /// Parses <paramref name="body"/> (RFC 8446 §4.1.2, RFC 5246 §7.4.1.2) and reports the outcome, with
    /// <paramref name="bytesExamined"/> as the records' extent when it is <see cref="ClientHelloStatus.Complete"/>.
    /// </summary>
    public static ClientHelloResult Parse(ReadOnlySequence<byte> body, long bytesExamined)
    {
        var reader = new SequenceReader<byte>(body);

        // ProtocolVersion legacy_version: 0x0303 from TLS 1.2 and 1.3 clients, 0x0301/0x0302 from older ones;
        // every TLS version has major byte 3 (RFC 5246 Appendix E).
        if (!reader.TryRead(out byte major) || major != TlsWire.VersionMajor || !reader.TryRead(out _))
        {
            return Malformed(bytesExamined, "legacy_version is not 3.x");
        }

        // Random random (32 bytes).
        if (!TrySkip(ref reader, TlsWire.RandomLength))
        {
            return Malformed(bytesExamined, "ClientHello ends inside random");
        }

        // opaque legacy_session_id<0..32>.
        if (!reader.TryRead(out byte sessionIdLength) || sessionIdLength > TlsWire.MaxSessionIdLength || !TrySkip(ref reader, sessionIdLength))
        {
            return Malformed(bytesExamined, "bad legacy_session_id length");
        }

        // CipherSuite cipher_suites<2..2^16-2>: an even number of bytes, at least one suite.
        if (!reader.TryReadBigEndian(out short rawSuites))
        {
            return Malformed(bytesExamined, "ClientHello ends before cipher_suites");
        }

        int suitesLength = (ushort)rawSuites;
        if (suitesLength < 2 || (suitesLength & 1) != 0 || !TrySkip(ref reader, suitesLength))
        {
            return Malformed(bytesExamined, "bad cipher_suites length");
        }

        // opaque legacy_compression_methods<1..2^8-1>.
        if (!reader.TryRead(out byte compressionLength) || compressionLength < 1 || !TrySkip(ref reader, compressionLength))
        {
            return Malformed(bytesExamined, "bad legacy_compression_methods length");
        }

        // RFC 5246 §7.4.1.2: the extensions block may be absent ("there are bytes following the
        // compression_methods" or not); then there is no SNI.
        if (reader.End)
        {
            return ClientHelloResult.Complete(bytesExamined, null, null, "ClientHello without extensions");
        }

        // Extension extensions<8..2^16-1> (TLS 1.3) or <0..2^16-1> (TLS 1.2): it must fill the rest of the body
        // exactly, since the handshake length already bounds the message.
        if (!reader.TryReadBigEndian(out short rawExtensions) || (ushort)rawExtensions != reader.Remaining)
        {
            return Malformed(bytesExamined, "extensions length does not match the ClientHello length");
        }

        return ParseExtensions(ref reader, bytesExamined);
    }

    private static ClientHelloResult ParseExtensions(ref SequenceReader<byte> reader, long bytesExamined)
    {
        // RFC 8446 §4.2: "There MUST NOT be more than one extension of the same type in a given extension block."
        // One bit per possible ExtensionType (8 KiB on the stack) keeps the check linear and allocation-free.
        Span<ulong> seen = stackalloc ulong[(ushort.MaxValue + 1) / 64];
        string? serverName = null;
        string? detail = null;
        IReadOnlyList<string>? protocols = null;

        while (!reader.End)
        {
            // struct { ExtensionType extension_type; opaque extension_data<0..2^16-1>; } Extension;
            if (!reader.TryReadBigEndian(out short rawType) || !reader.TryReadBigEndian(out short rawLength))
            {
                return Malformed(bytesExamined, "extensions block ends inside an extension header");
            }

            ushort type = (ushort)rawType;
            int length = (ushort)rawLength;
            if (length > reader.Remaining)
            {
                return Malformed(bytesExamined, "extension longer than the extensions block");
            }

            ref ulong word = ref seen[type >> 6];
            ulong bit = 1UL << (type & 63);
            if ((word & bit) != 0)
            {
                return Malformed(bytesExamined, "duplicate extension type");
            }

            word |= bit;
            var data = reader.UnreadSequence.Slice(0, length);
            reader.Advance(length);

            switch (type)
            {
                case TlsWire.ExtensionServerName:
                    switch (ServerNameExtension.Read(data, out serverName))
                    {
                        case ServerNameOutcome.HostName:
                            break;
                        case ServerNameOutcome.NoHostName:
                            detail = "server_name without a host_name entry";
                            break;
                        case ServerNameOutcome.IpLiteral:
                            detail = "an IP literal in server_name, which RFC 6066 §3 forbids, ignored";
                            break;
                        case ServerNameOutcome.BadHostName:
                            return Malformed(bytesExamined, "server_name host_name is not a DNS host name");
                        default:
                            return Malformed(bytesExamined, "inconsistent server_name extension");
                    }

                    break;

                case TlsWire.ExtensionApplicationLayerProtocolNegotiation:
                    protocols = AlpnExtension.Read(data);
                    if (protocols is null)
                    {
                        return Malformed(bytesExamined, "inconsistent application_layer_protocol_negotiation extension");
                    }

                    break;
            }
        }

        return ClientHelloResult.Complete(bytesExamined, serverName, protocols, detail);
    }

    private static ClientHelloResult Malformed(long bytesExamined, string detail) => ClientHelloResult.Malformed(bytesExamined, detail);

    private static bool TrySkip(ref SequenceReader<byte> reader, int count)
    {
        if (reader.Remaining < count)
        {
            return false;
        }

        reader.Advance(count);
        return true;
    }
}
