using System.Buffers.Binary;
using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// The start of an HTTP/2 connection as its client sends it (RFC 9113 §3.4): the 24-byte preface, then the header of
/// its first frame, which must be a SETTINGS frame on stream 0. The relay checks it before handing the connection to
/// Kestrel, and answers a wrong one itself, with its own (empty) SETTINGS and a GOAWAY, then closes.
/// </summary>
/// <remarks>
/// Kestrel looks at a frame only once its whole payload has arrived: a preface followed by anything else, whose first
/// three bytes read as a frame length of a few hundred bytes, held the connection open until Kestrel's keep-alive
/// ping went unanswered (about 30 s), although the first frame's header already said the start was wrong. A start cut
/// short waited as long; here it has the request head timeout, as an HTTP/1.1 head has.
/// </remarks>
internal static class Http2Start
{
    /// <summary>RFC 9113 §7: NO_ERROR, PROTOCOL_ERROR, FRAME_SIZE_ERROR.</summary>
    public const uint NoError = 0x0, ProtocolError = 0x1, FrameSizeError = 0x6;

    /// <summary>The bytes checked: the preface and a frame header.</summary>
    public const int Length = 24 + FrameHeaderLength;

    private const int FrameHeaderLength = 9;
    private const byte SettingsType = 0x4, GoAwayType = 0x7, AckFlag = 0x1;

    /// <summary>The largest frame payload a peer may send before the server's SETTINGS say otherwise (RFC 9113 §4.2).</summary>
    private const int InitialMaxFrameSize = 16_384;

    /// <summary>The client connection preface (RFC 9113 §3.4).</summary>
    public static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>What the bytes seen so far make of the start.</summary>
    public enum Verdict
    {
        /// <summary>Right so far; more bytes are needed to tell.</summary>
        Incomplete,

        /// <summary>The preface and the header of a first SETTINGS frame: Kestrel takes it from here.</summary>
        Valid,

        /// <summary>Wrong: to be answered with a GOAWAY carrying the error code given.</summary>
        Invalid,
    }

    /// <summary>
    /// Checks the first bytes of a connection that is to speak HTTP/2. For <see cref="Verdict.Invalid"/>,
    /// <paramref name="errorCode"/> and <paramref name="detail"/> say what the GOAWAY is to carry.
    /// </summary>
    public static Verdict Check(ReadOnlySpan<byte> seen, out uint errorCode, out string detail)
    {
        errorCode = NoError;
        detail = "";
        var preface = Preface;
        var compared = Math.Min(seen.Length, preface.Length);
        if (!seen[..compared].SequenceEqual(preface[..compared]))
        {
            (errorCode, detail) = (ProtocolError, "invalid connection preface");
            return Verdict.Invalid;
        }
        if (seen.Length < Length)
        {
            return Verdict.Incomplete;
        }
        var header = seen.Slice(preface.Length, FrameHeaderLength);
        var length = (header[0] << 16) | (header[1] << 8) | header[2];
        var stream = BinaryPrimitives.ReadUInt32BigEndian(header[5..]) & 0x7fff_ffff;
        if (header[3] != SettingsType || stream != 0)
        {
            (errorCode, detail) = (ProtocolError, "the connection preface must be followed by a SETTINGS frame on stream 0");
        }
        else if (length > InitialMaxFrameSize || length % 6 != 0 || ((header[4] & AckFlag) != 0 && length != 0))
        {
            // RFC 9113 §4.2 and §6.5.
            (errorCode, detail) = (FrameSizeError, "SETTINGS frame of a wrong length");
        }
        return errorCode == NoError ? Verdict.Valid : Verdict.Invalid;
    }

    /// <summary>
    /// The relay's answer to a start it refuses: the server preface (an empty SETTINGS frame, RFC 9113 §3.4), then a
    /// GOAWAY (§6.8) naming no stream as processed, with <paramref name="errorCode"/> and <paramref name="detail"/> as
    /// its debug data.
    /// </summary>
    public static byte[] GoAway(uint errorCode, string detail)
    {
        var debug = Encoding.ASCII.GetBytes(detail);
        var answer = new byte[FrameHeaderLength + FrameHeaderLength + 8 + debug.Length];
        answer[3] = SettingsType;
        var goAway = answer.AsSpan(FrameHeaderLength);
        var length = 8 + debug.Length;
        (goAway[0], goAway[1], goAway[2], goAway[3]) = ((byte)(length >> 16), (byte)(length >> 8), (byte)length, GoAwayType);
        // Flags, stream 0 and last stream ID 0 stay zero.
        BinaryPrimitives.WriteUInt32BigEndian(goAway[(FrameHeaderLength + 4)..], errorCode);
        debug.CopyTo(goAway[(FrameHeaderLength + 8)..]);
        return answer;
    }
}
