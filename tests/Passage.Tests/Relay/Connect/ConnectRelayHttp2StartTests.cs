using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// An HTTP/2 connection whose start (the preface, then a SETTINGS frame: RFC 9113 §3.4) is wrong or cut short is
/// answered with the server's SETTINGS and a GOAWAY, and closed by the relay, on both listeners; it no longer waits
/// for the client to give up.
/// </summary>
public sealed class ConnectRelayHttp2StartTests
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    /// <summary>Not a frame: its first bytes read as a frame header of length 0x167 and type 'a', whose payload never comes.</summary>
    private static readonly byte[] Garbage = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat("\0\u0001garbage, not a protocol at all\r\n", 4)));

    private const uint ProtocolError = 0x1;
    private const uint NoError = 0x0;

    [Fact]
    public async Task A_preface_followed_by_garbage_on_the_plain_endpoint_gets_goaway_protocol_error_and_is_closed()
    {
        await using var relay = await ConnectHarness.StartAsync();
        using var socket = await relay.ConnectPlainAsync();
        await Loopback.SendAllAsync(socket, Preface.Concat(Garbage).ToArray());

        // Read until the relay closes: returns only once it has.
        var answer = await Loopback.ReadToEndAsync(socket);

        AssertGoAway(answer, ProtocolError);
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/http_request_error") == 1
            && relay.Counter("passage.relay.connections.open") == 0);
    }

    [Fact]
    public async Task A_preface_followed_by_garbage_after_tls_with_alpn_h2_gets_goaway_protocol_error_and_is_closed()
    {
        await using var relay = await ConnectHarness.StartAsync();
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, relay.TlsPort)).WaitAsync(Timeouts.Default);
        await using var tls = await ConnectHarness.TlsToRelayAsync(new NetworkStream(socket, ownsSocket: false), SslApplicationProtocol.Http2)
            .WaitAsync(Timeouts.Default);
        Assert.Equal(SslApplicationProtocol.Http2, tls.NegotiatedApplicationProtocol);
        await tls.WriteAsync(Preface.Concat(Garbage).ToArray());

        var answer = await ReadToEndAsync(tls);

        AssertGoAway(answer, ProtocolError);
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/http_request_error") == 1
            && relay.Counter("passage.relay.connections.open") == 0);
    }

    [Fact]
    public async Task A_start_cut_short_after_the_preface_gets_goaway_at_the_request_head_timeout_and_is_closed()
    {
        await using var relay = await ConnectHarness.StartAsync(o => o with { RequestHeadTimeout = TimeSpan.FromMilliseconds(300) });
        using var socket = await relay.ConnectPlainAsync();
        // The preface and 4 bytes of a SETTINGS frame's header, then nothing.
        await Loopback.SendAllAsync(socket, Preface.Concat(new byte[] { 0, 0, 6, 4 }).ToArray());

        var answer = await Loopback.ReadToEndAsync(socket);

        AssertGoAway(answer, NoError);
        await Timeouts.WaitUntilAsync(() => relay.Counter("passage.relay.connections.refused/http_request_timeout") == 1
            && relay.Counter("passage.relay.connections.open") == 0);
    }

    /// <summary>Reads until the relay closes (close_notify or end of stream), within <see cref="Timeouts.Default"/>.</summary>
    private static async Task<byte[]> ReadToEndAsync(Stream stream)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        var received = new MemoryStream();
        var buffer = new byte[4096];
        int n;
        while ((n = await stream.ReadAsync(buffer, cts.Token)) > 0)
        {
            received.Write(buffer, 0, n);
        }
        return received.ToArray();
    }

    /// <summary>The answer is the server preface (an empty SETTINGS frame) and a GOAWAY with <paramref name="errorCode"/>, nothing else.</summary>
    private static void AssertGoAway(byte[] answer, uint errorCode)
    {
        Assert.True(answer.Length >= 9 + 9 + 8, $"answer of {answer.Length} bytes: {Convert.ToHexString(answer)}");
        // SETTINGS: length 0, type 4, no flags, stream 0.
        Assert.Equal(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }, answer[..9]);
        var goAway = answer.AsSpan(9);
        var length = (goAway[0] << 16) | (goAway[1] << 8) | goAway[2];
        Assert.Equal(7, goAway[3]);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(goAway[5..]));
        Assert.Equal(9 + length, goAway.Length);
        // No stream was processed; then the error code.
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(goAway[9..]));
        Assert.Equal(errorCode, BinaryPrimitives.ReadUInt32BigEndian(goAway[13..]));
    }
}
