using System.Buffers;

namespace Passage.Relay.Passthrough;

/// <summary>
/// Reads the TLS ClientHello a client sends first, without terminating TLS, so that the pass-through relay can
/// route on its SNI host name and then forward every byte unchanged. A pure function of the bytes buffered so
/// far: call it again with the whole buffer after each read until the status is no longer
/// <see cref="ClientHelloStatus.Incomplete"/>; a reader that calls <see cref="Resume"/> with one
/// <see cref="ClientHelloProgress"/> for the connection is spared walking again the records it walked before.
/// </summary>
/// <remarks>
/// <code>
///  buffered bytes ──► record layer (RFC 8446 §5.1) ──► handshake header ──► ClientHello body (§4.1.2)
///                     type 22, version 3.1-3.4,        type 1, uint24 len    ──► extensions (§4.2)
///                     1..2^14 bytes each; the hello     ≤ bound, else           ──► server_name (RFC 6066 §3)
///                     may span records                  TooLarge at once        ──► ALPN (RFC 7301 §3.1)
/// </code>
/// A hello held in one record is parsed in place; one spread over several records is first copied into a
/// pooled buffer no larger than the bound. SSLv2-compatible hellos (RFC 5246 Appendix E.2) are not TLS records
/// and are reported as <see cref="ClientHelloStatus.NotTls"/>.
/// </remarks>
internal static class ClientHelloParser
{
    /// <summary>
    /// A sensible bound for the ClientHello body (a Passage tunable, not a TLS limit, which is 2^24 - 1): one full
    /// record. Browsers' hellos, post-quantum key shares included, stay well under 4 KiB.
    /// </summary>
    public const int DefaultMaxHandshakeBytes = TlsWire.MaxPlaintextLength;

    /// <summary>
    /// Examines the bytes a client has sent so far.
    /// </summary>
    /// <param name="buffered">Everything read from the connection so far, from its first byte. Not modified.</param>
    /// <param name="maxHandshakeBytes">
    /// The largest ClientHello body accepted, counted as the handshake header's uint24 length (the 4-byte header
    /// excluded). A longer one is <see cref="ClientHelloStatus.TooLarge"/> as soon as its header is read.
    /// </param>
    /// <returns>The verdict; never throws for any content of <paramref name="buffered"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxHandshakeBytes"/> is negative (a caller bug).</exception>
    public static ClientHelloResult Parse(ReadOnlySequence<byte> buffered, int maxHandshakeBytes)
    {
        var progress = default(ClientHelloProgress);
        return Resume(buffered, maxHandshakeBytes, ref progress);
    }

    /// <summary>
    /// As <see cref="Parse"/>, starting at the first record <paramref name="progress"/> has not walked yet, and
    /// leaving it at the first one not complete in <paramref name="buffered"/>. A hello trickled in in tiny records
    /// (one byte each is as valid as any size) costs each call the records that arrived since the last, not every
    /// record again: walking all of them on each read took seconds of CPU for one 32 KiB hello read a byte at a time.
    /// </summary>
    /// <param name="buffered">Everything read from the connection so far, from its first byte, of which what an
    /// earlier call with this <paramref name="progress"/> saw is unchanged. Not modified.</param>
    /// <param name="maxHandshakeBytes">As for <see cref="Parse"/>.</param>
    /// <param name="progress">Default for a new connection; then the same one on every call for it.</param>
    /// <returns>The verdict; never throws for any content of <paramref name="buffered"/>.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxHandshakeBytes"/> is negative (a caller bug).</exception>
    public static ClientHelloResult Resume(ReadOnlySequence<byte> buffered, int maxHandshakeBytes, ref ClientHelloProgress progress)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxHandshakeBytes);

        var framing = ReadRecords(buffered, maxHandshakeBytes, ref progress, out int bodyLength, out int records, out long end);
        if (framing is { } verdict)
        {
            return verdict;
        }

        if (records == 1)
        {
            // The common case: the whole message sits in the first record's fragment, parse it in place.
            var body = buffered.Slice(TlsWire.RecordHeaderLength + TlsWire.HandshakeHeaderLength, bodyLength);
            return ClientHelloBodyParser.Parse(body, end);
        }

        var rented = ArrayPool<byte>.Shared.Rent(bodyLength);
        try
        {
            CopyBody(buffered, rented.AsSpan(0, bodyLength));
            return ClientHelloBodyParser.Parse(new ReadOnlySequence<byte>(rented, 0, bodyLength), end);
        }
        finally
        {
            // The hello crossed the network in clear; nothing secret to wipe.
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    /// <summary>
    /// Walks the TLSPlaintext records holding the ClientHello handshake message, from the first one
    /// <paramref name="progress"/> has not walked, moving it past each record walked whole. Returns a verdict when
    /// the framing alone decides (incomplete, not TLS, malformed, too large), or null when the whole message is
    /// buffered and consistent; then <paramref name="bodyLength"/>, the number of <paramref name="records"/> and
    /// the offset just past the last of them (<paramref name="end"/>) are set.
    /// </summary>
    private static ClientHelloResult? ReadRecords(
        ReadOnlySequence<byte> buffered, int maxHandshakeBytes, ref ClientHelloProgress progress, out int bodyLength, out int records, out long end)
    {
        end = 0;
        // Sliced rather than advanced past: skipping segments by their lengths alone, without reading them.
        long start = progress.Offset;
        var reader = new SequenceReader<byte>(buffered.Slice(start));
        records = progress.Records;
        int headerFilled = progress.HeaderFilled;
        int lengthSoFar = progress.LengthSoFar;
        bodyLength = progress.BodyKnown ? lengthSoFar : -1;
        long bodyRemaining = progress.BodyRemaining;

        while (true)
        {
            // A record boundary: what is known so far, for the next call to start from.
            progress = new ClientHelloProgress(start + reader.Consumed, records, headerFilled, lengthSoFar, bodyLength >= 0, bodyRemaining);
            // RFC 8446 §5.1: struct { ContentType type; ProtocolVersion legacy_record_version; uint16 length;
            // opaque fragment[length]; } TLSPlaintext. Each header byte is judged as soon as it arrives.
            if (!reader.TryRead(out byte contentType))
            {
                return ClientHelloResult.Incomplete(start + reader.Consumed);
            }

            if (contentType != TlsWire.ContentTypeHandshake)
            {
                // RFC 8446 §4.1.2: a client's first message is the ClientHello, so the first record is a
                // handshake record. Once committed to TLS, any other record type (alert, change_cipher_spec,
                // application data) before the hello is complete is out of order (§5.1: handshake messages
                // may not be interleaved with other record types): an unexpected_message (§6.2).
                return records == 0
                    ? ClientHelloResult.NotTls(start + reader.Consumed, "first byte is not a TLS handshake record")
                    : ClientHelloResult.Malformed(start + reader.Consumed, "non-handshake record before the ClientHello was complete", TlsAlertDescription.UnexpectedMessage);
            }

            if (!reader.TryRead(out byte major))
            {
                return ClientHelloResult.Incomplete(start + reader.Consumed);
            }

            if (major != TlsWire.VersionMajor)
            {
                return records == 0
                    ? ClientHelloResult.NotTls(start + reader.Consumed, "record version major byte is not 3")
                    : ClientHelloResult.Malformed(start + reader.Consumed, "record version major byte is not 3");
            }

            if (!reader.TryRead(out byte minor))
            {
                return ClientHelloResult.Incomplete(start + reader.Consumed);
            }

            // RFC 8446 §5.1: legacy_record_version is 0x0303, or 0x0301 in an initial ClientHello, and MUST be
            // ignored for all purposes; RFC 5246 Appendix E.1 lets a client offer 0x0300 in its first record, the
            // lowest version it would take, and says which versions it speaks in the hello itself. The destination
            // judges those. Accepted: SSL 3.0 (0x0300) to TLS 1.3 (0x0304); a minor byte past any version is taken
            // for another protocol's bytes that happen to start as a handshake record.
            if (minor > 4)
            {
                return ClientHelloResult.Malformed(start + reader.Consumed, "record version outside 0x0300..0x0304");
            }

            if (!reader.TryReadBigEndian(out short rawLength))
            {
                return ClientHelloResult.Incomplete(start + reader.Consumed);
            }

            int fragmentLeft = (ushort)rawLength;

            // RFC 8446 §5.1: "Implementations MUST NOT send zero-length fragments of Handshake types".
            if (fragmentLeft == 0)
            {
                return ClientHelloResult.Malformed(start + reader.Consumed, "zero-length handshake record");
            }

            // RFC 8446 §5.1: "The length MUST NOT exceed 2^14 bytes" (record_overflow).
            if (fragmentLeft > TlsWire.MaxPlaintextLength)
            {
                return ClientHelloResult.Malformed(start + reader.Consumed, "record longer than 2^14 bytes", TlsAlertDescription.RecordOverflow);
            }

            records++;

            // RFC 8446 §4: struct { HandshakeType msg_type; uint24 length; ... } Handshake; the header itself may
            // be split across records (§5.1: a message may be fragmented across several records).
            while (headerFilled < TlsWire.HandshakeHeaderLength && fragmentLeft > 0)
            {
                if (!reader.TryRead(out byte b))
                {
                    return ClientHelloResult.Incomplete(start + reader.Consumed);
                }

                if (headerFilled == 0 && b != TlsWire.HandshakeTypeClientHello)
                {
                    // RFC 8446 §6.2: "the wrong handshake message" is an unexpected_message.
                    return ClientHelloResult.Malformed(start + reader.Consumed, "first handshake message is not a ClientHello", TlsAlertDescription.UnexpectedMessage);
                }

                // After the type, the uint24 length, most significant byte first.
                lengthSoFar = headerFilled == 0 ? 0 : (lengthSoFar << 8) | b;
                headerFilled++;
                fragmentLeft--;
            }

            if (headerFilled < TlsWire.HandshakeHeaderLength)
            {
                continue;
            }

            if (bodyLength < 0)
            {
                bodyLength = lengthSoFar;
                if (bodyLength > maxHandshakeBytes)
                {
                    return ClientHelloResult.TooLarge(start + reader.Consumed, "ClientHello longer than the configured bound");
                }

                if (bodyLength < TlsWire.MinClientHelloBodyLength)
                {
                    return ClientHelloResult.Malformed(start + reader.Consumed, "ClientHello shorter than its mandatory fields");
                }

                bodyRemaining = bodyLength;
            }

            // RFC 8446 §5.1: a ClientHello can precede a key change, so it MUST end on a record boundary; bytes
            // after it in the same record are an unexpected_message. Known from the header, without waiting.
            if (fragmentLeft > bodyRemaining)
            {
                return ClientHelloResult.Malformed(start + reader.Consumed, "record continues past the end of the ClientHello", TlsAlertDescription.UnexpectedMessage);
            }

            if (reader.Remaining < fragmentLeft)
            {
                return ClientHelloResult.Incomplete(start + reader.Consumed);
            }

            reader.Advance(fragmentLeft);
            bodyRemaining -= fragmentLeft;
            if (bodyRemaining == 0)
            {
                end = start + reader.Consumed;
                return null;
            }
        }
    }

    /// <summary>
    /// Copies the ClientHello body out of records already validated by <see cref="ReadRecords"/>, dropping
    /// record headers and the 4-byte handshake header.
    /// </summary>
    private static void CopyBody(ReadOnlySequence<byte> buffered, Span<byte> destination)
    {
        var reader = new SequenceReader<byte>(buffered);
        int headerLeft = TlsWire.HandshakeHeaderLength;
        int copied = 0;
        while (copied < destination.Length)
        {
            reader.Advance(TlsWire.RecordHeaderLength - 2);
            reader.TryReadBigEndian(out short rawLength);
            int fragmentLeft = (ushort)rawLength;
            int skip = Math.Min(headerLeft, fragmentLeft);
            reader.Advance(skip);
            headerLeft -= skip;
            fragmentLeft -= skip;
            reader.TryCopyTo(destination.Slice(copied, fragmentLeft));
            reader.Advance(fragmentLeft);
            copied += fragmentLeft;
        }
    }
}

/// <summary>
/// How far <see cref="ClientHelloParser.Resume"/> has walked one connection's records: the offset of the first record
/// not yet walked whole, and what the records before it said. A value; default before the first call.
/// </summary>
/// <param name="Offset">Where the first record not walked whole starts.</param>
/// <param name="Records">The records walked whole.</param>
/// <param name="HeaderFilled">The bytes of the 4-byte handshake header read so far.</param>
/// <param name="LengthSoFar">The handshake length's bytes read so far, as a number; the whole length once known.</param>
/// <param name="BodyKnown">Whether the whole handshake header has been read and checked.</param>
/// <param name="BodyRemaining">The ClientHello body's bytes still to come, once known.</param>
internal readonly record struct ClientHelloProgress(
    long Offset, int Records, int HeaderFilled, int LengthSoFar, bool BodyKnown, long BodyRemaining);
