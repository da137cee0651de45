using Passage.Client;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using static Passage.Tests.Client.HostileRelayTests;

namespace Passage.Tests.Client;

/// <summary>
/// A tunnel's stream as an application uses it, and misuses it: cancelled reads and writes, what comes after them, and
/// what the application's own doing leaves of the tunnel and of the relay's standing.
/// </summary>
public sealed class TunnelStreamUseTests
{
    /// <summary>
    /// A write given a token cancelled already is refused, as any stream refuses it, and the tunnel goes on. It was handed
    /// to the HTTP/2 client, which took it for the end of every write: each write after failed with an
    /// <see cref="OperationCanceledException"/> nobody asked for, and the tunnel could send no more.
    /// </summary>
    [Fact]
    public async Task A_write_with_a_token_cancelled_already_is_refused_and_the_tunnel_goes_on()
    {
        await using var relay = HostileRelay.Start(AnsweredInTurn());
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        var error = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await tunnel.WriteAsync("xx"u8.ToArray(), cancelled.Token));
        Assert.Equal(cancelled.Token, error.CancellationToken);
        await AssertEchoesAsync(tunnel);
    }

    /// <summary>
    /// A write the application cancels while it waits for the relay's window ends the tunnel's sending (the HTTP/2 client
    /// sends nothing more on the stream): the writes after fail with an <see cref="IOException"/> that says so, not with
    /// an <see cref="OperationCanceledException"/> for a cancelling they were not given. The relay stays up: the
    /// application ended it. The relay here never grants more than its first window, which one write uses whole.
    /// </summary>
    [Fact]
    public async Task A_write_cancelled_while_it_waits_fails_the_writes_after_saying_why()
    {
        await using var relay = HostileRelay.Start((connection, stream) => connection.SendAsync(HostileConnection.Answer(stream, 200)));
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await tunnel.WriteAsync(new byte[65_535]).AsTask().WaitAsync(Timeouts.Default);
        using var cancelling = new CancellationTokenSource();

        var waiting = tunnel.WriteAsync(new byte[1000], cancelling.Token).AsTask();
        await cancelling.CancelAsync();
        var cancelled = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(cancelling.Token, cancelled.CancellationToken);

        var error = await Assert.ThrowsAsync<IOException>(async () => await tunnel.WriteAsync(new byte[1]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Contains("takes no more writes: a write was cancelled while it waited", error.Message);
        Assert.Throws<IOException>(() => tunnel.Write(new byte[1]));
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A tunnel takes one read and one write at a time, as a TLS stream does (an HTTP/1.1 tunnel's): a second that comes
    /// while one is under way is refused with a <see cref="NotSupportedException"/> that says so, and the first goes on. The
    /// HTTP/2 client has room for one waiting read and one waiting write of a stream: a second write left both waiting for
    /// good, and the client's disposing then threw the stream's broken state at the application; a second read took the
    /// bytes meant for the first, or left it waiting. A read beside a write is fine.
    /// </summary>
    [Fact]
    public async Task A_second_read_or_write_while_one_is_under_way_is_refused_and_the_first_goes_on()
    {
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            // Once the client has used the whole first window: more of it, and the echo of what comes after.
            await Timeouts.WaitUntilAsync(() => connection.Received.Where(f => f.Type == RawHttp2.Data && f.Stream == stream).Sum(f => f.Payload.Length) >= 65_535);
            connection.Echo(stream);
            await connection.SendAsync((byte[])[.. HostileConnection.WindowUpdate(0, 65_535), .. HostileConnection.WindowUpdate(stream, 65_535)]);
        });
        var client = await StartClientAsync(new ManualTimeProvider(), relay);
        await using var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await tunnel.WriteAsync(new byte[65_535]).AsTask().WaitAsync(Timeouts.Default);

        var reading = tunnel.ReadAsync(new byte[16]).AsTask();
        var read = await Assert.ThrowsAsync<NotSupportedException>(() => tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Contains("a read of this tunnel is under way already", read.Message);
        await Assert.ThrowsAsync<NotSupportedException>(() => Task.Run(() => tunnel.Read(new byte[16])).WaitAsync(Timeouts.Default));
        // The window is used up: this write waits until the relay grants more.
        var writing = tunnel.WriteAsync("hi"u8.ToArray()).AsTask();
        var write = await Assert.ThrowsAsync<NotSupportedException>(() => tunnel.WriteAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Contains("a write of this tunnel is under way already", write.Message);

        await writing.WaitAsync(Timeouts.Default);
        Assert.Equal(2, await reading.WaitAsync(Timeouts.Default));
        await AssertEchoesAsync(tunnel);
        await client.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// A write to a tunnel the application disposed, or one under way when it does, throws the
    /// <see cref="ObjectDisposedException"/> of the tunnel, as a read does: it named a part of the HTTP client
    /// (<c>Http2WriteStream</c>, <c>CreditManager</c>) the application never saw. The write under way here waits for the
    /// relay's window, which one write used whole.
    /// </summary>
    [Fact]
    public async Task A_write_to_a_disposed_tunnel_says_the_tunnel_is_disposed_as_a_read_does()
    {
        await using var relay = HostileRelay.Start((connection, stream) => connection.SendAsync(HostileConnection.Answer(stream, 200)));
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);
        await tunnel.WriteAsync(new byte[65_535]).AsTask().WaitAsync(Timeouts.Default);

        var waiting = tunnel.WriteAsync(new byte[1000]).AsTask();
        await tunnel.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        var read = await Assert.ThrowsAsync<ObjectDisposedException>(() => tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        var under = await Assert.ThrowsAsync<ObjectDisposedException>(() => waiting.WaitAsync(Timeouts.Default));
        var after = await Assert.ThrowsAsync<ObjectDisposedException>(() => tunnel.WriteAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(read.ObjectName, under.ObjectName);
        Assert.Equal(read.ObjectName, after.ObjectName);
        Assert.True(client.Status.Single().IsUp);
    }

    /// <summary>
    /// A read of a tunnel disposed while a read was under way throws the tunnel's <see cref="ObjectDisposedException"/>,
    /// not the refusal of a second read: the read under way ends after the disposing, on the thread pool, and the one that
    /// came meanwhile was told that a read is under way. The local HTTP proxy reads so (its drain of the origin's end,
    /// after its pump tore the tunnel down with a wait for the tunnel's bytes pending), which the refusal escaped, as a fault.
    /// </summary>
    [Fact]
    public async Task A_read_of_a_tunnel_disposed_under_a_read_says_the_tunnel_is_disposed()
    {
        await using var relay = HostileRelay.Start((connection, stream) => connection.SendAsync(HostileConnection.Answer(stream, 200)));
        await using var client = await StartClientAsync(new ManualTimeProvider(), relay);
        var tunnel = await client.ConnectAsync("origin.test", 443).AsTask().WaitAsync(Timeouts.Default);

        var waiting = tunnel.ReadAsync(Memory<byte>.Empty).AsTask();
        await tunnel.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await Assert.ThrowsAsync<ObjectDisposedException>(() => tunnel.ReadAsync(new byte[16]).AsTask().WaitAsync(Timeouts.Default));
        Assert.Throws<ObjectDisposedException>(() => tunnel.Read(new byte[16]));
        await Assert.ThrowsAnyAsync<Exception>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.True(client.Status.Single().IsUp);
    }
}
