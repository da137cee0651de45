using System.Net;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>A HEADERS frame on a tunnel's stream once it is connected (RFC 9113 §8.5), over both kinds of HTTP/2 CONNECT.</summary>
public sealed class ConnectRelayHttp2TrailersTests
{
    /// <summary>
    /// RFC 9113 §8.5: on a connected CONNECT stream, "Frame types other than DATA or stream management frames (RST_STREAM,
    /// WINDOW_UPDATE, and PRIORITY) MUST NOT be sent ... and MUST be treated as a stream error if received", and a proxy
    /// that detects an error with the stream sends the destination a TCP reset. Kestrel reads a HEADERS frame that ends the
    /// stream as the request's trailers, and ends the request's content with it: the relay took it for END_STREAM, passed
    /// a clean half-close on to the destination (its bytes said whole) and counted the tunnel completed.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Trailers_on_a_tunnels_stream_reset_it_and_its_destination_and_count_the_client_failing(bool classic)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var relay = await ConnectHarness.StartAsync();
        using var h2 = await RawHttp2.ConnectAsync(relay.PlainPort);
        await h2.SendAsync(classic
            ? RawHttp2.Frame(RawHttp2.Headers, RawHttp2.EndHeaders, 1, RawHttp2.HeaderBlock((":method", "CONNECT"), (":authority", $"127.0.0.1:{port}")))
            : RawHttp2.ExtendedConnect(1, "127.0.0.1", port));
        using var upstream = await listener.AcceptAsync().WaitAsync(Timeouts.Default);
        Assert.Equal(200, (await h2.ReadUntilAsync(f => f.Type == RawHttp2.Headers && f.Stream == 1))!.Status);
        await h2.SendAsync(RawHttp2.Frame(RawHttp2.Data, 0, 1, "hi"u8));
        var received = new byte[2];
        Assert.Equal(2, await upstream.ReceiveAsync(received.AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeouts.Default));

        await h2.SendAsync(RawHttp2.Frame(RawHttp2.Headers, (byte)(RawHttp2.EndHeaders | RawHttp2.EndStream), 1, RawHttp2.HeaderBlock(("x-trailer", "1"))));

        var end = await Assert.ThrowsAsync<SocketException>(() => upstream.ReceiveAsync(new byte[1].AsMemory(), SocketFlags.None).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.ConnectionReset, end.SocketErrorCode);
        var reset = await h2.ReadUntilAsync(f => f.Stream == 1 && (f.Type == RawHttp2.RstStream || (f.Flags & RawHttp2.EndStream) != 0));
        Assert.Equal(RawHttp2.RstStream, reset!.Type);
        Assert.Equal(RawHttp2.ProtocolError, reset.ErrorCode);
        await Timeouts.WaitUntilAsync(
            () => relay.Total("passage.relay.connections.closed", "connect_h2") == 1,
            () => $"{relay.Total("passage.relay.connections.closed", "connect_h2")} closed");
        Assert.Equal(1, relay.Counter("passage.relay.connections.closed/client_failed"));
        Assert.Equal(0, relay.Relay.OpenTunnels);
    }
}
