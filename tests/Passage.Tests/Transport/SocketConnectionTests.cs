using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// A plain socket as one end of a relay: reads, writes and waits (on Linux through the relay's own
/// readiness, see <see cref="SocketReadiness"/>), what ends a wait, and connecting.
/// </summary>
public sealed class SocketConnectionTests : IAsyncLifetime
{
    private Socket _peer = null!;
    private Socket _socket = null!;
    private SocketConnection _connection = null!;

    public async Task InitializeAsync()
    {
        (_peer, _socket) = await Loopback.ConnectedPairAsync();
        _connection = new SocketConnection(_socket);
    }

    public async Task DisposeAsync()
    {
        await _connection.DisposeAsync();
        _peer.Dispose();
    }

    [Fact]
    public async Task A_zero_byte_read_waits_for_data_and_takes_none_of_it()
    {
        await AssertZeroByteReadWaitsForAsync(_connection, _peer, "hello"u8.ToArray());
    }

    [Fact]
    public async Task A_zero_byte_read_completes_at_end_of_stream_and_the_next_read_returns_zero()
    {
        var wait = _connection.ReadAsync(Memory<byte>.Empty, default);
        _peer.Shutdown(SocketShutdown.Send);

        Assert.Equal(0, await wait.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await _connection.ReadAsync(new byte[16], default).AsTask().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task After_a_read_that_filled_its_buffer_a_zero_byte_read_answers_at_once_if_more_is_there_and_waits_if_not()
    {
        // One segment on loopback: once its first half is readable, all of it is.
        await Loopback.SendAllAsync(_peer, "abcdefgh"u8.ToArray());
        Assert.Equal("abcd"u8.ToArray(), await ReadAsync(_connection, 4));

        // A reader that takes one record at a time (TLS) asks this after every record: no readiness round trip.
        var more = _connection.ReadAsync(Memory<byte>.Empty, default);
        Assert.True(more.IsCompleted);
        Assert.Equal(0, await more);

        // A short read drained the socket: the next zero-byte read waits, and nothing was taken by looking.
        var buffer = new byte[16];
        Assert.Equal(4, await _connection.ReadAsync(buffer, default));
        Assert.Equal("efgh"u8.ToArray(), buffer.AsSpan(0, 4).ToArray());
        await AssertZeroByteReadWaitsForAsync(_connection, _peer, "ij"u8.ToArray());

        // After a full read, the end of stream answers a zero-byte read too (looked at, or waited for).
        _peer.Shutdown(SocketShutdown.Send);
        var end = _connection.ReadAsync(Memory<byte>.Empty, default);
        Assert.Equal(0, await end.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await _connection.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task A_short_read_that_leaves_only_the_end_of_stream_behind_does_not_make_the_next_zero_byte_read_wait()
    {
        // Watched from a first wait on, so that the end of stream is reported before the read that follows.
        var first = _connection.ReadAsync(Memory<byte>.Empty, default);
        await Loopback.SendAllAsync(_peer, "abc"u8.ToArray());
        await first.AsTask().WaitAsync(Timeouts.Default);
        _peer.Shutdown(SocketShutdown.Send);
        await Task.Delay(100);

        // Fewer bytes than asked for: the socket holds no more data, but the end of stream is still there
        // to be read, and no report about it will come again.
        var buffer = new byte[16];
        Assert.Equal(3, await _connection.ReadAsync(buffer, default));
        Assert.Equal(0, await _connection.ReadAsync(Memory<byte>.Empty, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await _connection.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task Bytes_that_arrive_after_a_short_read_wake_the_zero_byte_read_that_follows_whenever_they_come()
    {
        var buffer = new byte[16];
        for (var i = 0; i < 40; i++)
        {
            await Loopback.SendAllAsync(_peer, "a"u8.ToArray());
            Assert.Equal(1, await _connection.ReadAsync(buffer, default).AsTask().WaitAsync(Timeouts.Default));
            // The next byte comes before the zero-byte read (its report handled before, or not yet), or after.
            var wait = default(ValueTask<int>);
            switch (i % 3)
            {
                case 0:
                    await Loopback.SendAllAsync(_peer, "b"u8.ToArray());
                    break;
                case 1:
                    await Loopback.SendAllAsync(_peer, "b"u8.ToArray());
                    await Task.Delay(5);
                    break;
                default:
                    wait = _connection.ReadAsync(Memory<byte>.Empty, default);
                    await Loopback.SendAllAsync(_peer, "b"u8.ToArray());
                    break;
            }
            if (i % 3 != 2)
            {
                wait = _connection.ReadAsync(Memory<byte>.Empty, default);
            }
            Assert.Equal(0, await wait.AsTask().WaitAsync(Timeouts.Default));
            Assert.Equal("b"u8.ToArray(), await ReadAsync(_connection, 1));
        }
    }

    [Fact]
    public async Task A_read_that_waits_gets_the_bytes_that_come_later()
    {
        var buffer = new byte[64];
        var read = _connection.ReadAsync(buffer, default);
        Assert.False(read.IsCompleted);

        await Loopback.SendAllAsync(_peer, "later"u8.ToArray());
        var n = await read.AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal("later"u8.ToArray(), buffer.AsSpan(0, n).ToArray());
    }

    [Fact]
    public async Task A_waiting_read_ends_when_its_token_fires_and_the_socket_stays_usable()
    {
        using var cts = new CancellationTokenSource();
        var read = _connection.ReadAsync(new byte[16], cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => read.AsTask().WaitAsync(Timeouts.Default));

        await Loopback.SendAllAsync(_peer, "still here"u8.ToArray());
        Assert.Equal("still here"u8.ToArray(), await ReadAsync(_connection, 10));
    }

    [Fact]
    public async Task Abort_ends_a_waiting_read_and_resets_the_peer()
    {
        var read = _connection.ReadAsync(Memory<byte>.Empty, default);
        _connection.Abort();

        var error = await Assert.ThrowsAsync<SocketException>(() => read.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.OperationAborted, error.SocketErrorCode);
        var reset = await Assert.ThrowsAsync<SocketException>(() => _peer.ReceiveAsync(new byte[1], SocketFlags.None).WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    [Fact]
    public async Task A_write_larger_than_the_buffers_waits_for_the_reader_and_delivers_every_byte_in_order()
    {
        Shrink(_socket, _peer);
        var data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);

        var write = _connection.WriteAsync(data, default);
        Assert.False(write.IsCompleted);
        var received = Loopback.ReadToEndAsync(_peer, limit: data.Length);

        await write.AsTask().WaitAsync(Timeouts.Default);
        Assert.Equal(data, await received);
    }

    [Fact]
    public async Task A_read_and_a_write_wait_on_the_same_socket_at_once_and_each_is_woken_for_its_own()
    {
        Shrink(_socket, _peer);
        var data = RandomNumberGenerator.GetBytes(16 * 1024 * 1024);
        var write = _connection.WriteAsync(data, default);
        var buffer = new byte[16];
        var read = _connection.ReadAsync(buffer, default);
        Assert.False(write.IsCompleted);
        Assert.False(read.IsCompleted);

        // Readable, while the write still waits: only the read is woken, the write stays armed.
        await _peer.SendAsync("r"u8.ToArray(), SocketFlags.None);
        Assert.Equal(1, await read.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal((byte)'r', buffer[0]);
        Assert.False(write.IsCompleted);

        Assert.Equal(data, await Loopback.ReadToEndAsync(_peer, limit: data.Length));
        await write.AsTask().WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task First_waits_to_read_and_to_write_begun_together_both_get_watched_and_woken()
    {
        // The first wait of each kind adds the socket to the epoll set or widens what it watches, outside
        // the socket's lock. Begun on two threads together, on many fresh sockets, each still gets
        // watched and woken. (The two epoll_ctl calls seldom overlap exactly: the case where one waits
        // for the other's call to end is not reliably reached here.)
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        var data = new byte[64 * 1024];
        for (var i = 0; i < 100; i++)
        {
            var (peer, socket) = await Loopback.ConnectedPairAsync();
            using var _ = peer;
            await using var connection = new SocketConnection(socket);
            Shrink(socket, peer);
            // Full already (without this object, which would watch the socket): the write's first send
            // finds no room, so its wait begins as soon as the read's.
            var chunk = new byte[64 * 1024];
            var filled = 0L;
            nint sent;
            while ((sent = SocketReadiness.Send(socket, chunk)) > 0)
            {
                filled += sent;
            }
            Assert.Equal(-LinuxSplice.EAGAIN, sent);
            using var start = new Barrier(2);
            var read = Task.Run(async () =>
            {
                start.SignalAndWait();
                await connection.ReadAsync(Memory<byte>.Empty, default);
            });
            var write = Task.Run(async () =>
            {
                start.SignalAndWait();
                await connection.WriteAsync(data, default);
            });

            await peer.SendAsync("r"u8.ToArray(), SocketFlags.None);
            await read.WaitAsync(Timeouts.Default);
            Assert.Equal(filled + data.Length, (await Loopback.ReadToEndAsync(peer, limit: (int)filled + data.Length)).Length);
            await write.WaitAsync(Timeouts.Default);
        }
    }

    [Fact]
    public async Task Disposing_ends_a_waiting_write()
    {
        Shrink(_socket, _peer);
        var write = _connection.WriteAsync(new byte[16 * 1024 * 1024], default);
        Assert.False(write.IsCompleted);

        await _connection.DisposeAsync();
        var error = await Assert.ThrowsAsync<SocketException>(() => write.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.OperationAborted, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_write_to_a_reset_peer_fails_as_the_runtime_reports_it()
    {
        _peer.LingerState = new LingerOption(true, 0);
        _peer.Close();
        await Task.Yield();

        // The first send may still be taken (the reset is in flight); a later one meets it.
        var error = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            for (var i = 0; i < 1000; i++)
            {
                await _connection.WriteAsync(new byte[1024], default).AsTask().WaitAsync(Timeouts.Default);
                await Task.Delay(1);
            }
        });
        Assert.Contains(error.SocketErrorCode, new[] { SocketError.ConnectionReset, SocketError.Shutdown });
    }

    [Fact]
    public async Task A_socket_stream_reads_and_writes_through_the_connection_and_ends_a_waiting_read_when_disposed()
    {
        var stream = new SocketStream(_connection);
        await stream.WriteAsync("to peer"u8.ToArray());
        Assert.Equal("to peer"u8.ToArray(), await Loopback.ReadToEndAsync(_peer, limit: 7));
        await Loopback.SendAllAsync(_peer, "to us"u8.ToArray());
        var buffer = new byte[16];
        Assert.Equal(5, await stream.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
        // Asynchronous only: a blocking read could hold up the very thread that would wake it.
        Assert.Throws<NotSupportedException>(() => stream.Read(buffer, 0, buffer.Length));

        var waiting = stream.ReadAsync(buffer).AsTask();
        Assert.False(waiting.IsCompleted);
        await stream.DisposeAsync();
        var error = await Assert.ThrowsAsync<SocketException>(() => waiting.WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.OperationAborted, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_socket_stream_reads_ahead_for_small_reads_keeps_the_order_and_holds_nothing_once_drained()
    {
        if (!_connection.IsNonBlocking)
        {
            return; // Reading ahead is for the relay's own readiness (Linux).
        }
        var stream = new SocketStream(_connection);
        var sent = RandomNumberGenerator.GetBytes(200_000);
        var send = Loopback.SendAllAsync(_peer, sent);
        var received = new MemoryStream();
        // Smaller than what one receive takes: the rest is kept for the next reads.
        var buffer = new byte[16_406];
        while (received.Length < sent.Length)
        {
            var n = await stream.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default);
            Assert.NotEqual(0, n);
            received.Write(buffer, 0, n);
            if (stream.HoldsReadAhead)
            {
                // Bytes are there: a zero-byte read says so at once, and takes none.
                var ready = stream.ReadAsync(Memory<byte>.Empty);
                Assert.True(ready.IsCompleted);
                Assert.Equal(0, await ready);
            }
        }
        await send;
        Assert.Equal(sent, received.ToArray());
        Assert.False(stream.HoldsReadAhead);

        // Drained, the next read waits holding nothing of the stream's, and the end of stream comes through
        // after the last bytes.
        var waiting = stream.ReadAsync(buffer).AsTask();
        Assert.False(waiting.IsCompleted);
        await Loopback.SendAllAsync(_peer, "tail"u8.ToArray());
        _peer.Shutdown(SocketShutdown.Send);
        Assert.Equal(4, await waiting.WaitAsync(Timeouts.Default));
        Assert.False(stream.HoldsReadAhead);
        Assert.Equal(0, await stream.ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default));
    }

    [Theory]
    [InlineData("127.0.0.1")]
    [InlineData("::1")]
    public async Task Connect_reaches_a_listener_and_the_connection_carries_bytes(string address)
    {
        var (connection, accepted) = await DialAsync(IPAddress.Parse(address));
        await using var _ = connection;
        using var __ = accepted;
        await connection.WriteAsync("over"u8.ToArray(), default);
        Assert.Equal("over"u8.ToArray(), await Loopback.ReadToEndAsync(accepted, limit: 4));
        await Loopback.SendAllAsync(accepted, "back"u8.ToArray());
        Assert.Equal("back"u8.ToArray(), await ReadAsync(connection, 4));
    }

    [Fact]
    public async Task After_connect_a_zero_byte_read_answers_for_bytes_the_peer_sent_first_and_waits_for_later_ones()
    {
        // A socket this object connected counts as empty until a read report comes: the bytes a server
        // sends as soon as it accepts (before anyone reads) must still be noticed.
        var (connection, accepted) = await DialAsync(IPAddress.Loopback);
        await using var _ = connection;
        using var __ = accepted;
        await Loopback.SendAllAsync(accepted, "first"u8.ToArray());
        while (connection.Socket.Available < 5)
        {
            await Task.Delay(5);
        }

        Assert.Equal(0, await connection.ReadAsync(Memory<byte>.Empty, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal("first"u8.ToArray(), await ReadAsync(connection, 5));
        await AssertZeroByteReadWaitsForAsync(connection, accepted, "later"u8.ToArray());
    }

    [Fact]
    public async Task After_connect_a_zero_byte_read_answers_when_the_peer_closes_at_once()
    {
        var (connection, accepted) = await DialAsync(IPAddress.Loopback);
        await using var _ = connection;
        accepted.Dispose();

        Assert.Equal(0, await connection.ReadAsync(Memory<byte>.Empty, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(0, await connection.ReadAsync(new byte[16], default).AsTask().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task Connect_to_a_port_nobody_listens_on_is_refused()
    {
        // Bound but not listening: the port stays taken, and the kernel refuses connections to it.
        using var bound = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        bound.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        await using var connection = new SocketConnection(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));

        var error = await Assert.ThrowsAsync<SocketException>(() => connection.ConnectAsync(bound.LocalEndPoint!, default).AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
    }

    [Fact]
    public async Task A_connect_not_finished_at_once_completes_through_its_wait()
    {
        // A loopback connect has mostly finished when connect(2) returns, and is taken at once. One
        // whose handshake the listener dropped (its accept queue full) waits for readiness instead,
        // and completes when the retried handshake (about a second later) finds room.
        using var listener = Listen(backlog: 1);
        using var fillers = await FillAcceptQueueAsync(listener);
        await using var connection = new SocketConnection(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        var connect = connection.ConnectAsync(listener.LocalEndPoint!, default);
        Assert.False(connect.IsCompleted);

        using var first = await listener.AcceptAsync().WaitAsync(Timeouts.Default);
        using var second = await listener.AcceptAsync().WaitAsync(Timeouts.Default);
        await connect.AsTask().WaitAsync(Timeouts.Default);
        using var accepted = await listener.AcceptAsync().WaitAsync(Timeouts.Default);

        await AssertZeroByteReadWaitsForAsync(connection, accepted, "late"u8.ToArray());
        await connection.WriteAsync("back"u8.ToArray(), default);
        Assert.Equal("back"u8.ToArray(), await Loopback.ReadToEndAsync(accepted, limit: 4));
    }

    [Fact]
    public async Task A_connect_that_gets_no_answer_ends_when_its_token_fires()
    {
        // A listener whose accept queue is full drops new handshakes: a connect to it hangs.
        using var listener = Listen(backlog: 1);
        using var fillers = await FillAcceptQueueAsync(listener);
        await using var connection = new SocketConnection(new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => connection.ConnectAsync(listener.LocalEndPoint!, cts.Token).AsTask().WaitAsync(Timeouts.Default));
    }

    /// <summary>
    /// Two connections to <paramref name="listener"/> (made with a backlog of 1), established and not
    /// accepted: its accept queue is full, so the kernel drops the next handshakes (a connect retries
    /// about a second later). Disposing closes them.
    /// </summary>
    private static async Task<Fillers> FillAcceptQueueAsync(Socket listener)
    {
        var fillers = new Fillers();
        for (var i = 0; i < 2; i++)
        {
            var filler = new Socket(listener.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            fillers.Sockets.Add(filler);
            await filler.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Timeouts.Default);
        }
        return fillers;
    }

    private sealed class Fillers : IDisposable
    {
        public List<Socket> Sockets { get; } = [];

        public void Dispose() => Sockets.ForEach(s => s.Dispose());
    }

    /// <summary>
    /// A zero-byte read on <paramref name="connection"/> stays pending until <paramref name="peer"/> sends
    /// <paramref name="bytes"/>, then completes with 0 and leaves all of them for the read after it.
    /// </summary>
    private static async Task AssertZeroByteReadWaitsForAsync(SocketConnection connection, Socket peer, byte[] bytes)
    {
        var wait = connection.ReadAsync(Memory<byte>.Empty, default);
        Assert.False(wait.IsCompleted);
        await Loopback.SendAllAsync(peer, bytes);
        Assert.Equal(0, await wait.AsTask().WaitAsync(Timeouts.Default));
        Assert.Equal(bytes, await ReadAsync(connection, bytes.Length));
    }

    /// <summary>A <see cref="SocketConnection"/> connected with its own ConnectAsync, and the socket a listener accepted for it.</summary>
    private static async Task<(SocketConnection Connection, Socket Accepted)> DialAsync(IPAddress address)
    {
        using var listener = Listen(backlog: 8, address);
        var connection = new SocketConnection(new Socket(listener.AddressFamily, SocketType.Stream, ProtocolType.Tcp));
        var accept = listener.AcceptAsync();
        await connection.ConnectAsync(listener.LocalEndPoint!, default).AsTask().WaitAsync(Timeouts.Default);
        return (connection, await accept.WaitAsync(Timeouts.Default));
    }

    private static Socket Listen(int backlog, IPAddress? address = null)
    {
        address ??= IPAddress.Loopback;
        var listener = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(address, 0));
        listener.Listen(backlog);
        return listener;
    }

    /// <summary>Small socket buffers, so that a large write is sure to have to wait for the reader.</summary>
    private static void Shrink(Socket sender, Socket receiver)
    {
        sender.SendBufferSize = 64 * 1024;
        receiver.ReceiveBufferSize = 64 * 1024;
    }

    private static async Task<byte[]> ReadAsync(SocketConnection connection, int count)
    {
        var buffer = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            var n = await connection.ReadAsync(buffer.AsMemory(filled), default).AsTask().WaitAsync(Timeouts.Default);
            Assert.NotEqual(0, n);
            filled += n;
        }
        return buffer;
    }
}
