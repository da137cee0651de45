using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>One HTTP/2 frame as read: type, flags, stream and payload (RFC 9113 §4.1).</summary>
internal sealed record RawFrame(byte Type, byte Flags, int Stream, byte[] Payload)
{
    /// <summary>The payload as text, each byte one character: a header block's literals (not Huffman-coded) can be read in it.</summary>
    public string Text => Encoding.Latin1.GetString(Payload);

    /// <summary>
    /// The <c>:status</c> of a response's HEADERS as Kestrel writes the first one on a connection: indexed from HPACK's
    /// static table (RFC 7541 Appendix A) or a literal with its name from there.
    /// </summary>
    public int Status => Payload[0] switch
    {
        >= 0x88 and <= 0x8e => new[] { 200, 204, 206, 304, 400, 404, 500 }[Payload[0] - 0x88],
        0x48 or 0x08 when Payload[1] == 3 => int.Parse(Encoding.ASCII.GetString(Payload, 2, 3), System.Globalization.CultureInfo.InvariantCulture),
        _ => throw new InvalidOperationException($"no :status read in {Convert.ToHexString(Payload.AsSpan(0, Math.Min(8, Payload.Length)))}"),
    };

    /// <summary>A GOAWAY's or RST_STREAM's error code.</summary>
    public uint ErrorCode => Type == RawHttp2.GoAway
        ? BinaryPrimitives.ReadUInt32BigEndian(Payload.AsSpan(4))
        : BinaryPrimitives.ReadUInt32BigEndian(Payload);
}

/// <summary>
/// An HTTP/2 end that writes its frames by hand, as a hostile one would: header blocks of HPACK literals without
/// indexing (RFC 7541 §6.2.2), and nothing done for it (no PING answered, no WINDOW_UPDATE sent) unless the test says
/// so. A client with prior knowledge on a relay's plain endpoint (<see cref="ConnectAsync"/>), or either end over a
/// stream the test opened (<see cref="Over"/>: a relay behind TLS).
/// </summary>
internal sealed class RawHttp2 : IDisposable
{
    public const byte Data = 0x0, Headers = 0x1, RstStream = 0x3, Settings = 0x4, Ping = 0x6, GoAway = 0x7, WindowUpdate = 0x8, Continuation = 0x9;
    public const byte EndStream = 0x1, Ack = 0x1, EndHeaders = 0x4;
    public const uint NoError = 0x0, ProtocolError = 0x1, FlowControlError = 0x3, FrameSizeError = 0x6, RefusedStream = 0x7, Cancel = 0x8, CompressionError = 0x9, ConnectError = 0xa;

    /// <summary>SETTINGS parameters (RFC 9113 §6.5.2, RFC 8441 §3).</summary>
    public const ushort MaxConcurrentStreams = 0x3, InitialWindowSize = 0x4, EnableConnectProtocol = 0x8;

    private readonly Stream _stream;
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start;
    private int _end;

    private RawHttp2(Stream stream) => _stream = stream;

    /// <summary>Frames over <paramref name="stream"/> (owned: disposed with this).</summary>
    public static RawHttp2 Over(Stream stream) => new(stream);

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/> and sends the preface and an empty SETTINGS frame.</summary>
    public static async Task<RawHttp2> ConnectAsync(int port)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(Timeouts.Default);
        var h2 = new RawHttp2(new NetworkStream(socket, ownsSocket: true));
        byte[] start = [.. Http2Start.Preface, .. Frame(Settings, 0, 0, [])];
        await h2.SendAsync(start);
        return h2;
    }

    /// <summary>A frame's bytes.</summary>
    public static byte[] Frame(byte type, byte flags, int stream, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[9 + payload.Length];
        (frame[0], frame[1], frame[2], frame[3], frame[4]) = ((byte)(payload.Length >> 16), (byte)(payload.Length >> 8), (byte)payload.Length, type, flags);
        BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(5), stream);
        payload.CopyTo(frame.AsSpan(9));
        return frame;
    }

    /// <summary>
    /// A header block of literal fields without indexing, names and values as given (no Huffman coding), each character
    /// one byte (Latin-1), so that a test can send any octet, UTF-8 sequences or obs-text, as the same string it sends
    /// over HTTP/1.1 (<see cref="ConnectHarness.SendHeadAsync"/>).
    /// </summary>
    public static byte[] HeaderBlock(params (string Name, string Value)[] fields)
    {
        var block = new List<byte>();
        foreach (var (name, value) in fields)
        {
            block.Add(0x00);
            foreach (var text in new[] { name, value })
            {
                var bytes = Encoding.Latin1.GetBytes(text);
                // The length as an HPACK integer with a 7-bit prefix (RFC 7541 §5.1).
                if (bytes.Length < 127)
                {
                    block.Add((byte)bytes.Length);
                }
                else
                {
                    block.Add(127);
                    for (var rest = bytes.Length - 127; ; rest >>= 7)
                    {
                        block.Add((byte)(rest >= 128 ? (rest & 0x7f) | 0x80 : rest));
                        if (rest < 128)
                        {
                            break;
                        }
                    }
                }
                block.AddRange(bytes);
            }
        }
        return [.. block];
    }

    /// <summary>A SETTINGS frame with the given parameters.</summary>
    public static byte[] SettingsFrame(params (ushort Id, uint Value)[] parameters)
    {
        var payload = new byte[6 * parameters.Length];
        for (var i = 0; i < parameters.Length; i++)
        {
            BinaryPrimitives.WriteUInt16BigEndian(payload.AsSpan(6 * i), parameters[i].Id);
            BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(6 * i + 2), parameters[i].Value);
        }
        return Frame(Settings, 0, 0, payload);
    }

    /// <summary>A GOAWAY frame naming <paramref name="lastStream"/> as the last stream that may have been processed.</summary>
    public static byte[] GoAwayFrame(int lastStream, uint errorCode = NoError)
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(payload, lastStream);
        BinaryPrimitives.WriteUInt32BigEndian(payload.AsSpan(4), errorCode);
        return Frame(GoAway, 0, 0, payload);
    }

    /// <summary>A HEADERS frame (END_HEADERS) on <paramref name="stream"/> with an extended CONNECT for <paramref name="host"/>:<paramref name="port"/>.</summary>
    public static byte[] ExtendedConnect(int stream, string host, int port) => ExtendedConnect(stream, MasqueTcpPath.PathFor(host, port));

    /// <summary>A HEADERS frame (END_HEADERS) on <paramref name="stream"/> with an extended CONNECT for <paramref name="path"/>, as written.</summary>
    public static byte[] ExtendedConnect(int stream, string path, string authority = "relay.test") => Frame(Headers, EndHeaders, stream, HeaderBlock(
        (":method", "CONNECT"),
        (":protocol", "connect-tcp"),
        (":scheme", "https"),
        (":authority", authority),
        (":path", path)));

    /// <summary>An RST_STREAM frame for <paramref name="stream"/>.</summary>
    public static byte[] Reset(int stream, uint errorCode = Cancel)
    {
        var code = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(code, errorCode);
        return Frame(RstStream, 0, stream, code);
    }

    public async Task SendAsync(ReadOnlyMemory<byte> bytes)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        await _stream.WriteAsync(bytes, cts.Token);
        await _stream.FlushAsync(cts.Token);
    }

    /// <summary>
    /// The next frame; null once the peer has closed the connection (end of stream or reset). Waits at most
    /// <paramref name="patience"/> (<see cref="Timeouts.Default"/> unless given).
    /// </summary>
    public async Task<RawFrame?> ReadFrameAsync(TimeSpan? patience = null)
    {
        using var cts = new CancellationTokenSource(patience ?? Timeouts.Default);
        while (true)
        {
            if (_end - _start >= 9)
            {
                var length = (_buffer[_start] << 16) | (_buffer[_start + 1] << 8) | _buffer[_start + 2];
                Assert.True(length <= _buffer.Length - 9, "frame larger than the test's buffer");
                if (_end - _start >= 9 + length)
                {
                    var frame = new RawFrame(
                        _buffer[_start + 3],
                        _buffer[_start + 4],
                        BinaryPrimitives.ReadInt32BigEndian(_buffer.AsSpan(_start + 5)) & 0x7fff_ffff,
                        _buffer.AsSpan(_start + 9, length).ToArray());
                    _start += 9 + length;
                    return frame;
                }
            }
            if (_start > 0)
            {
                Buffer.BlockCopy(_buffer, _start, _buffer, 0, _end - _start);
                (_end, _start) = (_end - _start, 0);
            }
            int n;
            try
            {
                n = await _stream.ReadAsync(_buffer.AsMemory(_end), cts.Token);
            }
            catch (IOException)
            {
                return null;
            }
            if (n == 0)
            {
                return null;
            }
            _end += n;
        }
    }

    /// <summary>Reads frames until one that <paramref name="match"/> accepts (returned), or the end (null).</summary>
    public async Task<RawFrame?> ReadUntilAsync(Func<RawFrame, bool> match)
    {
        while (await ReadFrameAsync() is { } frame)
        {
            if (match(frame))
            {
                return frame;
            }
        }
        return null;
    }

    public void Dispose() => _stream.Dispose();
}
