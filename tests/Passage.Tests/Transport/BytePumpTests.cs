using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The pump between two real loopback connections:
/// app ⇄ [relayIn | pump | relayOut] ⇄ server.
/// Every scenario runs on both paths (<see cref="BytePumpCopyPathTests"/>, <see cref="BytePumpSplicePathTests"/>):
/// the results must not depend on which one moved the bytes.
/// </summary>
public abstract class BytePumpTests : IAsyncLifetime
{
    private protected Socket _app = null!;
    private protected Socket _relayIn = null!;
    private protected Socket _relayOut = null!;
    private protected Socket _server = null!;

    /// <summary>The value of <see cref="PumpOptions.ZeroCopy"/> for every run.</summary>
    private protected abstract bool ZeroCopy { get; }

    /// <summary>The path both directions of a socket-to-socket run must have taken.</summary>
    private protected PumpPath ExpectedPath => ZeroCopy && OperatingSystem.IsLinux() ? PumpPath.Splice : PumpPath.Copy;

    public async Task InitializeAsync()
    {
        (_app, _relayIn) = await Loopback.ConnectedPairAsync();
        (_relayOut, _server) = await Loopback.ConnectedPairAsync();
    }

    public Task DisposeAsync()
    {
        foreach (var socket in new[] { _app, _relayIn, _relayOut, _server })
        {
            socket.Dispose();
        }
        return Task.CompletedTask;
    }

    private protected Task<PumpResult> StartPump(PumpOptions? options = null, ReadOnlyMemory<byte> preamble = default, CancellationToken token = default) =>
        CheckedPath(BytePump.RunAsync(
            new SocketConnection(_relayIn), new SocketConnection(_relayOut), (options ?? new PumpOptions()) with { ZeroCopy = ZeroCopy }, preamble, token));

    private async Task<PumpResult> CheckedPath(Task<PumpResult> run)
    {
        var result = await run;
        Assert.Equal(ExpectedPath, result.ClientToUpstreamPath);
        Assert.Equal(ExpectedPath, result.UpstreamToClientPath);
        return result;
    }

    [Fact]
    public async Task Moves_bulk_data_both_ways_at_once_intact_and_counts_it()
    {
        var up = RandomNumberGenerator.GetBytes(8 * 1024 * 1024 + 17);
        var down = RandomNumberGenerator.GetBytes(5 * 1024 * 1024 + 3);
        var pump = StartPump();

        var appSends = Task.Run(async () => { await Loopback.SendAllAsync(_app, up); _app.Shutdown(SocketShutdown.Send); });
        var serverSends = Task.Run(async () => { await Loopback.SendAllAsync(_server, down); _server.Shutdown(SocketShutdown.Send); });
        var serverGets = Loopback.ReadToEndAsync(_server);
        var appGets = Loopback.ReadToEndAsync(_app);
        await Task.WhenAll(appSends, serverSends);

        Assert.Equal(SHA256.HashData(up), SHA256.HashData(await serverGets));
        Assert.Equal(SHA256.HashData(down), SHA256.HashData(await appGets));
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(PumpSide.None, result.FailedSide);
        Assert.Equal(up.Length, result.ClientToUpstreamBytes);
        Assert.Equal(down.Length, result.UpstreamToClientBytes);
    }

    [Fact]
    public async Task Half_close_from_client_is_passed_on_and_the_reply_still_flows()
    {
        var pump = StartPump();
        var request = "question"u8.ToArray();
        await Loopback.SendAllAsync(_app, request);
        _app.Shutdown(SocketShutdown.Send);

        // The server sees the request and then end of stream, and only then answers.
        Assert.Equal(request, await Loopback.ReadToEndAsync(_server));
        var reply = RandomNumberGenerator.GetBytes(300_000);
        await Loopback.SendAllAsync(_server, reply);
        _server.Shutdown(SocketShutdown.Send);

        Assert.Equal(reply, await Loopback.ReadToEndAsync(_app));
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(request.Length, result.ClientToUpstreamBytes);
        Assert.Equal(reply.Length, result.UpstreamToClientBytes);
    }

    [Fact]
    public async Task Half_close_from_upstream_keeps_the_client_direction_open()
    {
        var pump = StartPump();
        await Loopback.SendAllAsync(_server, "banner"u8.ToArray());
        _server.Shutdown(SocketShutdown.Send);
        Assert.Equal("banner"u8.ToArray(), await Loopback.ReadToEndAsync(_app));

        // The app can still talk after the upstream finished sending.
        await Loopback.SendAllAsync(_app, "late words"u8.ToArray());
        _app.Shutdown(SocketShutdown.Send);
        Assert.Equal("late words"u8.ToArray(), await Loopback.ReadToEndAsync(_server));
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
    }

    [Fact]
    public async Task Preamble_goes_to_the_upstream_first_and_is_counted()
    {
        var pump = StartPump(preamble: "hello-"u8.ToArray());
        await Loopback.SendAllAsync(_app, "world"u8.ToArray());
        _app.Shutdown(SocketShutdown.Send);
        Assert.Equal("hello-world"u8.ToArray(), await Loopback.ReadToEndAsync(_server));
        _server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(11, result.ClientToUpstreamBytes);
    }

    [Fact]
    public async Task An_idle_run_keeps_no_reference_to_the_preamble_once_it_is_delivered()
    {
        var (pump, preamble) = StartPumpWithUnreferencedPreamble(1500);
        Assert.Equal(1500, (await Loopback.ReadToEndAsync(_server, limit: 1500)).Length);

        // Both directions now wait for data; whatever they hold is what an idle connection holds.
        var collected = false;
        for (var i = 0; i < 50 && !collected; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
            collected = !preamble.IsAlive;
            if (!collected)
            {
                // The write's completion may still be unwinding on another thread.
                await Task.Delay(20);
            }
        }
        Assert.False(pump.IsCompleted);
        Assert.True(collected, "the idle run still references the preamble it has delivered");

        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(1500, result.ClientToUpstreamBytes);
    }

    /// <summary>Starts a run whose preamble nothing else references (not inlined, so no caller frame keeps it).</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private (Task<PumpResult> Pump, WeakReference Preamble) StartPumpWithUnreferencedPreamble(int length)
    {
        var preamble = RandomNumberGenerator.GetBytes(length);
        return (StartPump(preamble: preamble), new WeakReference(preamble));
    }

    [Fact]
    public async Task Urgent_data_does_not_stall_the_bytes_that_follow_it()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        // TCP's urgent byte (MSG_OOB) stops a read short at its mark, and splice(2) stops there for good: neither
        // may be taken for "the source is empty" while the rest waits behind it. The relay carries no urgency:
        // the byte is left out, as a plain read leaves it out.
        HoldBackTheWayOut();
        var head = RandomNumberGenerator.GetBytes(200_000);
        var tail = RandomNumberGenerator.GetBytes(30_000);
        var pump = StartPump(new PumpOptions { PipeSize = 64 * 1024 });

        // The server does not read yet: the direction is held up by its destination while everything, the
        // urgent byte too, reaches the relay's socket. Once the relay has it all, no more news comes of it.
        await Loopback.SendAllAsync(_app, head);
        Assert.Equal(1, _app.Send("!"u8.ToArray(), SocketFlags.OutOfBand));
        await Loopback.SendAllAsync(_app, tail);
        await Timeouts.WaitUntilAsync(() => UnsentOrUnacknowledged(_app) == 0);

        var received = await Loopback.ReadToEndAsync(_server, limit: head.Length + tail.Length);
        Assert.Equal(head.Concat(tail), received);
        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(head.Length + tail.Length, result.ClientToUpstreamBytes);
    }

    /// <summary>
    /// Small buffers on the way out (relay to server), a large one on the way in: with the server not reading, a direction
    /// is soon held up by its destination while what the app sends still reaches the relay's socket.
    /// </summary>
    private void HoldBackTheWayOut()
    {
        _relayOut.SendBufferSize = 16 * 1024;
        _server.ReceiveBufferSize = 16 * 1024;
        _relayIn.ReceiveBufferSize = 1024 * 1024;
    }

    /// <summary>Bytes <paramref name="socket"/> has sent that its peer has not acknowledged, or not sent yet (TIOCOUTQ).</summary>
    private static int UnsentOrUnacknowledged(Socket socket)
    {
        const nuint TIOCOUTQ = 0x5411;
        var count = 0;
        Assert.Equal(0, Ioctl((int)socket.SafeHandle.DangerousGetHandle(), TIOCOUTQ, ref count));
        return count;
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "ioctl", SetLastError = true)]
    private static extern int Ioctl(int fd, nuint request, ref int count);

    [Fact]
    public async Task Idle_timeout_closes_both_sides_when_nothing_moves()
    {
        var clock = new ManualTimeProvider();
        var pump = StartPump(new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock });

        await Loopback.SendAllAsync(_app, "x"u8.ToArray());
        Assert.Equal("x"u8.ToArray(), await Loopback.ReadToEndAsync(_server, limit: 1));
        clock.Advance(TimeSpan.FromSeconds(9));
        Assert.False(pump.IsCompleted);

        clock.Advance(TimeSpan.FromSeconds(2));
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.IdleTimeout, result.End);
        Assert.Equal(1, result.ClientToUpstreamBytes);
        Assert.True(await Loopback.IsClosedByPeerAsync(_app));
        Assert.True(await Loopback.IsClosedByPeerAsync(_server));
    }

    [Fact]
    public async Task Traffic_in_either_direction_resets_the_idle_timer()
    {
        var clock = new ManualTimeProvider();
        var pump = StartPump(new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock });

        for (var i = 0; i < 5; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(8));
            var (from, to) = i % 2 == 0 ? (_app, _server) : (_server, _app);
            await Loopback.SendAllAsync(from, new[] { (byte)i });
            Assert.Equal(new[] { (byte)i }, await Loopback.ReadToEndAsync(to, limit: 1));
        }
        // 40 seconds have passed, never 10 in a row without a byte.
        Assert.False(pump.IsCompleted);

        clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(PumpEnd.IdleTimeout, (await pump.WaitAsync(Timeouts.Default)).End);
    }

    [Fact]
    public async Task A_write_that_waits_on_a_slow_reader_is_activity_as_long_as_the_reader_takes_bytes()
    {
        // On the copy path, a write was stamped only when it completed: one buffer (64 KiB) to a reader taking a little at
        // a time outlasted the idle timeout, and the connection was cut though its bytes moved. Here the reader takes
        // 16 KiB every 4 s of a 10 s timeout, for two minutes, and the first buffer (1 MiB) is never done.
        var clock = new ManualTimeProvider();
        // Small buffers from the connection's start (set later, the window already offered stays): every 16 KiB read then
        // takes bytes the pump has yet to send.
        using (var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 })
        {
            listener.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            listener.Listen(1);
            var relayOut = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { SendBufferSize = 4096 };
            _relayOut.Dispose();
            _relayOut = relayOut;
            await relayOut.ConnectAsync(listener.LocalEndPoint!);
            _server.Dispose();
            _server = await listener.AcceptAsync();
        }
        var pump = StartPump(new PumpOptions { IdleTimeout = TimeSpan.FromSeconds(10), TimeProvider = clock, BufferSize = 1024 * 1024 });
        var sending = Task.Run(async () =>
        {
            try
            {
                await Loopback.SendAllAsync(_app, new byte[4 * 1024 * 1024], TimeSpan.FromMinutes(5));
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
            {
                // The run ended and closed the relay's side.
            }
        });
        for (var i = 0; i < 30; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(4));
            Assert.Equal(16 * 1024, (await Loopback.ReadToEndAsync(_server, limit: 16 * 1024)).Length);
        }
        Assert.False(pump.IsCompleted);

        // A write that nobody takes bytes of is no activity: once the bytes the last read made room for have moved, the
        // run is idle. (Those may move after the clock has passed on: it is moved until the run ends.)
        for (var i = 0; i < 100 && !pump.IsCompleted; i++)
        {
            clock.Advance(TimeSpan.FromSeconds(11));
            await Task.WhenAny(pump, Task.Delay(100));
        }
        Assert.Equal(PumpEnd.IdleTimeout, (await pump.WaitAsync(Timeouts.Default)).End);
        _app.Dispose();
        await sending.WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task Cancellation_ends_the_run_and_closes_both_sides()
    {
        using var cts = new CancellationTokenSource();
        var pump = StartPump(token: cts.Token);
        await Loopback.SendAllAsync(_app, "a"u8.ToArray());
        Assert.Single(await Loopback.ReadToEndAsync(_server, limit: 1));

        cts.Cancel();
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Canceled, result.End);
        Assert.True(await Loopback.IsClosedByPeerAsync(_app));
        Assert.True(await Loopback.IsClosedByPeerAsync(_server));
    }

    [Fact]
    public async Task Upstream_reset_fails_the_run_names_the_side_and_keeps_counts_right()
    {
        var pump = StartPump();
        var request = RandomNumberGenerator.GetBytes(1000);
        await Loopback.SendAllAsync(_app, request);
        Assert.Equal(request, await Loopback.ReadToEndAsync(_server, limit: request.Length));
        var reply = RandomNumberGenerator.GetBytes(500);
        await Loopback.SendAllAsync(_server, reply);
        Assert.Equal(reply, await Loopback.ReadToEndAsync(_app, limit: reply.Length));

        _server.LingerState = new LingerOption(true, 0);
        _server.Close();

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Upstream, result.FailedSide);
        Assert.Equal(SocketError.ConnectionReset, result.SocketError);
        Assert.Equal(1000, result.ClientToUpstreamBytes);
        Assert.Equal(500, result.UpstreamToClientBytes);
        // The client is told at once, not left waiting.
        Assert.True(await Loopback.IsClosedByPeerAsync(_app));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Upstream_reset_whose_error_a_write_took_is_still_a_reset_not_a_clean_end(bool wrappedAsTheHttp2DoorDoes)
    {
        // The order the pump runs into when the client sends while the destination resets: the write to it takes the
        // reset's error, and the read then finds an end of stream. The HTTP/2 door's wrapper must pass the socket's answer on (IEndOfStreamCheck).
        await ResetAndLetAWriteTakeTheError(_server, _relayOut);

        var pump = wrappedAsTheHttp2DoorDoes
            ? BytePump.RunAsync(
                new SocketConnection(_relayIn),
                new Passage.Relay.Connect.Http2TunnelDestination(new SocketConnection(_relayOut), TimeProvider.System),
                new PumpOptions { ZeroCopy = ZeroCopy })
            : StartPump();
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Upstream, result.FailedSide);
        Assert.Equal(SocketError.ConnectionReset, result.SocketError);
        // The client is reset too, not sent a FIN that would say the destination ended cleanly.
        var toldClient = await Assert.ThrowsAsync<SocketException>(() => Loopback.ReadToEndAsync(_app));
        Assert.Equal(SocketError.ConnectionReset, toldClient.SocketErrorCode);
    }

    [Fact]
    public async Task Client_reset_whose_error_a_write_took_reaches_the_upstream_as_a_reset_through_a_stream_connection()
    {
        // As above from the client's side, read through a stream as the TLS front door reads it (there with TLS over it):
        // the transport socket's state tells the reset from a FIN, or the destination would be sent a FIN that says the
        // client's bytes were whole.
        await ResetAndLetAWriteTakeTheError(_app, _relayIn);

        var result = await BytePump.RunAsync(
            new StreamConnection(new SocketStream(new SocketConnection(_relayIn)), _relayIn),
            new SocketConnection(_relayOut),
            new PumpOptions { ZeroCopy = ZeroCopy }).WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Client, result.FailedSide);
        var toldServer = await Assert.ThrowsAsync<SocketException>(() => Loopback.ReadToEndAsync(_server));
        Assert.Equal(SocketError.ConnectionReset, toldServer.SocketErrorCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Client_that_reset_only_after_its_FIN_ended_cleanly_and_the_upstream_gets_its_bytes_and_the_end(bool throughAStream)
    {
        // A client that sent its bytes and closed, then refused a byte the relay wrote to it (a server's greeting, say),
        // reset after its FIN: its connection is closed as after a reset, yet its bytes were whole, and a reset passed on
        // would cut what of them the relay still held for the upstream.
        var request = RandomNumberGenerator.GetBytes(1000);
        await Loopback.SendAllAsync(_app, request);
        _app.Close();
        await Timeouts.WaitUntilAsync(() => TcpState.Of(_relayIn) == TcpState.CloseWait, () => $"state {TcpState.Of(_relayIn)}");
        _relayIn.Send("x"u8);
        await Timeouts.WaitUntilAsync(() => TcpState.Of(_relayIn) == TcpState.Close, () => $"state {TcpState.Of(_relayIn)}");

        // Through a stream as the TLS front door reads its client (there with TLS over it), or straight from the socket.
        IDuplexConnection client = throughAStream
            ? new StreamConnection(new SocketStream(new SocketConnection(_relayIn)), _relayIn)
            : new SocketConnection(_relayIn);
        var pump = BytePump.RunAsync(client, new SocketConnection(_relayOut), new PumpOptions { ZeroCopy = ZeroCopy });
        Assert.Equal(request, await Loopback.ReadToEndAsync(_server));
        _server.Shutdown(SocketShutdown.Send);
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(request.Length, result.ClientToUpstreamBytes);
    }

    /// <summary>
    /// <paramref name="peer"/> resets its connection, and a write of <paramref name="relaySide"/> (the other direction's, in
    /// a real run) meets the reset and takes its error: the relay's next read of it returns 0 as after a FIN.
    /// </summary>
    private static async Task ResetAndLetAWriteTakeTheError(Socket peer, Socket relaySide)
    {
        peer.LingerState = new LingerOption(true, 0);
        peer.Close();
        var reset = await Assert.ThrowsAsync<SocketException>(async () =>
        {
            using var cts = new CancellationTokenSource(Timeouts.Default);
            while (true)
            {
                await relaySide.SendAsync("x"u8.ToArray(), SocketFlags.None, cts.Token);
                await Task.Delay(10, cts.Token);
            }
        });
        Assert.Equal(SocketError.ConnectionReset, reset.SocketErrorCode);
    }

    [Fact]
    public async Task Bytes_the_upstream_read_before_it_reset_are_counted_though_the_write_that_carried_them_failed()
    {
        // Small buffers on the way out: the preamble's one write is still waiting for room, most of it
        // unsent, when the server has read the first 100,000 bytes of it and resets.
        _relayOut.SendBufferSize = 16 * 1024;
        _server.ReceiveBufferSize = 16 * 1024;
        var preamble = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        await ServerReadsSomeThenResets(StartPump(preamble: preamble), preamble);
    }

    [Fact]
    public async Task Bytes_the_upstream_read_before_it_reset_are_counted_through_an_end_that_wraps_its_socket()
    {
        // As above, with the upstream wrapped as the HTTP/2 door wraps its destination: the wrapper passes the socket's
        // count on (IWrittenCount), or the part of the failed write that went out would be counted nowhere.
        _relayOut.SendBufferSize = 16 * 1024;
        _server.ReceiveBufferSize = 16 * 1024;
        var preamble = RandomNumberGenerator.GetBytes(2 * 1024 * 1024);
        var destination = new Passage.Relay.Connect.Http2TunnelDestination(new SocketConnection(_relayOut), TimeProvider.System);
        // The wrapper offers no socket to splice around it: copied either way.
        var pump = BytePump.RunAsync(new SocketConnection(_relayIn), destination, new PumpOptions { ZeroCopy = ZeroCopy }, preamble, default);
        await ServerReadsSomeThenResets(pump, preamble);
    }

    [Fact]
    public async Task Relayed_bytes_the_upstream_read_before_it_reset_are_counted_though_the_write_that_carried_them_failed()
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        // As above, for bytes relayed from the client: all queued in the relay's socket before the run starts,
        // so that the copy path takes them in one read and sends them in one write.
        HoldBackTheWayOut();
        var data = RandomNumberGenerator.GetBytes(300_000);
        await Loopback.SendAllAsync(_app, data);
        await Timeouts.WaitUntilAsync(() => UnsentOrUnacknowledged(_app) == 0);
        await ServerReadsSomeThenResets(StartPump(new PumpOptions { BufferSize = 1024 * 1024 }), data);
    }

    /// <summary>
    /// The server reads the first 100,000 bytes of <paramref name="sent"/> and resets, while the write that carried them
    /// still waits for room: the run fails on the upstream side and counts what the server read, not the whole write.
    /// </summary>
    private async Task ServerReadsSomeThenResets(Task<PumpResult> pump, byte[] sent)
    {
        var read = await Loopback.ReadToEndAsync(_server, limit: 100_000);
        Assert.Equal(sent.Take(100_000), read);
        _server.LingerState = new LingerOption(true, 0);
        _server.Close();

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Upstream, result.FailedSide);
        // Delivered: the server read them. At most what the kernel took: not the whole write.
        Assert.InRange(result.ClientToUpstreamBytes, read.Length, sent.Length - 1);
    }

    [Fact]
    public async Task Client_reset_fails_the_run_on_the_client_side()
    {
        var pump = StartPump();
        _app.LingerState = new LingerOption(true, 0);
        _app.Close();
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Client, result.FailedSide);
        Assert.True(await Loopback.IsClosedByPeerAsync(_server));
    }

    [Fact]
    public async Task A_slow_reader_holds_the_pump_back_and_every_byte_still_arrives_in_order()
    {
        // Small buffers on the way out fill at once, so the pump must wait for the destination.
        _relayOut.SendBufferSize = 16 * 1024;
        _server.ReceiveBufferSize = 16 * 1024;
        var up = RandomNumberGenerator.GetBytes(3 * 1024 * 1024 + 5);
        var pump = StartPump();
        var appSends = Task.Run(async () => { await Loopback.SendAllAsync(_app, up); _app.Shutdown(SocketShutdown.Send); });

        await Task.Delay(100);
        var received = new MemoryStream();
        var buffer = new byte[7 * 1024];
        using var cts = new CancellationTokenSource(Timeouts.Default);
        int n;
        while ((n = await _server.ReceiveAsync(buffer, SocketFlags.None, cts.Token)) > 0)
        {
            received.Write(buffer, 0, n);
            if (received.Length % (512 * 1024) < n)
            {
                await Task.Delay(5);
            }
        }
        await appSends;
        _server.Shutdown(SocketShutdown.Send);

        Assert.Equal(SHA256.HashData(up), SHA256.HashData(received.ToArray()));
        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Completed, result.End);
        Assert.Equal(up.Length, result.ClientToUpstreamBytes);
    }

    [Fact]
    public async Task Upstream_reset_while_data_flows_fails_on_the_upstream_side_with_the_socket_error()
    {
        var pump = StartPump();
        var sent = 0L;
        var appSends = Task.Run(async () =>
        {
            var chunk = RandomNumberGenerator.GetBytes(256 * 1024);
            try
            {
                for (var i = 0; i < 256; i++)
                {
                    await Loopback.SendAllAsync(_app, chunk);
                    Interlocked.Add(ref sent, chunk.Length);
                }
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                // The relay reset the app once the upstream was gone.
            }
        });
        Assert.Equal(1024 * 1024, (await Loopback.ReadToEndAsync(_server, limit: 1024 * 1024)).Length);
        _server.LingerState = new LingerOption(true, 0);
        _server.Close();

        var result = await pump.WaitAsync(Timeouts.Default);
        Assert.Equal(PumpEnd.Failed, result.End);
        Assert.Equal(PumpSide.Upstream, result.FailedSide);
        // A reset seen by a read is ConnectionReset; by a write, ConnectionReset then EPIPE (Shutdown).
        Assert.Contains(result.SocketError, new[] { SocketError.ConnectionReset, SocketError.Shutdown });
        Assert.InRange(result.ClientToUpstreamBytes, 1024 * 1024, 256L * 256 * 1024);
        Assert.True(await Loopback.IsClosedByPeerAsync(_app));
        await appSends.WaitAsync(Timeouts.Default);
        Assert.True(result.ClientToUpstreamBytes <= Interlocked.Read(ref sent) + 256 * 1024);
    }
}
