using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay;

/// <summary>
/// The listener's side of the handler contract: a connection handed on (the handler returned true)
/// stays counted open, and the drain waits for it, until its end is reported, once.
/// </summary>
public sealed class FrontDoorListenerTests
{
    [Fact]
    public async Task A_handed_on_connection_stays_open_until_its_end_is_reported_and_the_drain_waits_for_it()
    {
        var handed = new TaskCompletionSource<(Socket Socket, long Id, IConnectionEnd End)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logger = new RecordingLogger();
        await using var listener = Start((socket, id, end, _) =>
        {
            handed.SetResult((socket, id, end));
            return Task.FromResult(true);
        }, logger, new RelayLimits { DrainTimeout = TimeSpan.FromMinutes(5) });
        using var client = await ConnectAsync(listener);
        var (accepted, id, end) = await handed.Task.WaitAsync(Timeouts.Default);
        using var _ = accepted;
        Assert.Equal(1, listener.OpenConnections);

        var stop = listener.StopAsync();
        var draining = await logger.WaitForAsync("Draining");
        Assert.Equal(1, draining.Value("Open"));
        // Named: a relay with several front doors says this of each.
        Assert.Equal("test", draining.Value("FrontDoor"));
        Assert.Equal(1, listener.OpenConnections);
        Assert.False(stop.IsCompleted);

        end.Ended(id, null);
        await stop.WaitAsync(Timeouts.Default);
        Assert.Equal(0, listener.OpenConnections);
        Assert.Equal(0, (await logger.WaitForAsync("Stopped")).Value("Closed"));
        Assert.Empty(logger.Named("ConnectionFault"));
    }

    [Fact]
    public async Task A_handed_on_connection_still_open_at_the_drain_deadline_is_told_by_the_token_and_counted()
    {
        var logger = new RecordingLogger();
        await using var listener = Start((socket, id, end, closeAll) =>
        {
            // A relay that closes when told to, and reports its end then.
            closeAll.Register(() =>
            {
                socket.Dispose();
                end.Ended(id, null);
            });
            return Task.FromResult(true);
        }, logger, new RelayLimits { DrainTimeout = TimeSpan.FromMilliseconds(200) });
        using var client = await ConnectAsync(listener);
        await Timeouts.WaitUntilAsync(() => listener.OpenConnections == 1);

        await listener.StopAsync().WaitAsync(Timeouts.Default);
        Assert.Equal(0, listener.OpenConnections);
        Assert.True(await Loopback.IsClosedByPeerAsync(client));
        Assert.Equal(1, (await logger.WaitForAsync("Stopped")).Value("Closed"));
    }

    [Fact]
    public async Task An_end_reported_before_the_handler_returns_is_counted_once()
    {
        var logger = new RecordingLogger();
        await using var listener = Start(async (socket, id, end, _) =>
        {
            socket.Dispose();
            end.Ended(id, null);
            await Task.Yield();
            return true;
        }, logger, new RelayLimits { MaxConnections = 1 });

        // Released twice, the count would drift below zero; never, the limit of one would refuse the next.
        for (var i = 0; i < 3; i++)
        {
            using var client = await ConnectAsync(listener);
            Assert.True(await Loopback.IsClosedByPeerAsync(client));
            await Timeouts.WaitUntilAsync(() => listener.OpenConnections == 0);
        }
        Assert.Equal(0, listener.OpenConnections);
        Assert.Empty(logger.Named("RefusedAtLimit"));
    }

    [Fact]
    public async Task A_handler_that_throws_is_logged_its_socket_closed_and_its_count_released()
    {
        var logger = new RecordingLogger();
        await using var listener = Start((_, _, _, _) => throw new InvalidOperationException("a bug"), logger, new RelayLimits { MaxConnections = 1 });

        using var client = await ConnectAsync(listener);
        Assert.True(await Loopback.IsClosedByPeerAsync(client));
        var fault = await logger.WaitForAsync("ConnectionFault");
        Assert.IsType<InvalidOperationException>(fault.Exception);
        await Timeouts.WaitUntilAsync(() => listener.OpenConnections == 0);
    }

    [Fact]
    public async Task A_fault_reported_with_a_relayed_end_is_logged_and_its_count_released()
    {
        var handed = new TaskCompletionSource<(long Id, IConnectionEnd End)>(TaskCreationOptions.RunContinuationsAsynchronously);
        var logger = new RecordingLogger();
        await using var listener = Start((socket, id, end, _) =>
        {
            socket.Dispose();
            handed.SetResult((id, end));
            return Task.FromResult(true);
        }, logger, new RelayLimits());
        using var client = await ConnectAsync(listener);
        var (id, end) = await handed.Task.WaitAsync(Timeouts.Default);
        Assert.Equal(1, listener.OpenConnections);

        end.Ended(id, new InvalidOperationException("a bug at the end"));
        Assert.Equal(0, listener.OpenConnections);
        Assert.IsType<InvalidOperationException>((await logger.WaitForAsync("ConnectionFault")).Exception);
    }

    /// <summary>
    /// At the limit, the listener refuses one client and then stops accepting until a connection ends (or a pause
    /// passes): before, it accepted and reset every client at once, and clients that reconnect as soon as they are reset
    /// kept it doing so thousands of times a second. Here the clock does not move, so the pause never ends by itself: of
    /// eight clients that come while one connection holds the only slot, none is accepted; the first is admitted when
    /// that connection ends, the next refused, the six others still wait, not reset; each pause that passes refuses one more.
    /// </summary>
    [Fact]
    public async Task At_the_limit_clients_wait_in_the_backlog_after_one_refusal_and_the_first_is_admitted_when_a_slot_frees()
    {
        await using var full = await FullListener.StartAsync();
        var waiting = new List<Socket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                waiting.Add(await ConnectAsync(full.Listener));
            }

            var timersBefore = full.Time.CreatedTimers;
            full.Held.End();
            var admitted = await full.NextHandedAsync();
            Assert.Equal(waiting[0].LocalEndPoint, admitted.Socket.RemoteEndPoint);
            // The slot is taken again: the next is refused, and the loop pauses.
            Assert.True(await Loopback.IsClosedByPeerAsync(waiting[1]));
            await Timeouts.WaitUntilAsync(() => full.Metrics[Refused] == 2);
            Assert.Equal(4, full.Metrics[Accepted]);
            Assert.All(waiting.Skip(2), client => Assert.False(client.Poll(0, SelectMode.SelectRead), "a waiting client was closed"));
            Assert.Single(full.Logger.Named("ConnectionLimitReached"));

            // A pause that passes with no slot free refuses one more, and no other. The pause is the one armed after this
            // refusal: the first one's timer may still be armed a moment after the slot freed it (it used to be the
            // one waited for, and the clock then moved before the new pause began, which then never ended).
            await Timeouts.WaitUntilAsync(() => full.Time.CreatedTimers > timersBefore && full.Time.ArmedTimers > 0);
            full.Time.Advance(FrontDoorListener.AcceptPause);
            Assert.True(await Loopback.IsClosedByPeerAsync(waiting[2]));
            await Timeouts.WaitUntilAsync(() => full.Metrics[Refused] == 3);
            Assert.Equal(5, full.Metrics[Accepted]);
            Assert.All(waiting.Skip(3), client => Assert.False(client.Poll(0, SelectMode.SelectRead), "a waiting client was closed"));
        }
        finally
        {
            waiting.ForEach(s => s.Dispose());
        }
    }

    /// <summary>
    /// One client (an address; an IPv6 /64) may hold at most <see cref="RelayLimits.MaxConnectionsPerClient"/> connections:
    /// one more from it is reset at once, and, unlike at the listener's own limit, accepting does not pause (the clock here
    /// never moves, so a pause would never end), so another client is still admitted right after. A slot its client
    /// gives back is its client's again.
    /// </summary>
    [Fact]
    public async Task A_client_at_its_own_limit_is_refused_at_once_while_other_clients_are_still_admitted()
    {
        var handed = System.Threading.Channels.Channel.CreateUnbounded<(Socket Socket, Action End)>();
        var logger = new RecordingLogger();
        var relayMetrics = new RelayMetrics();
        using var metrics = new MetricsRecorder(relayMetrics.Meter);
        var time = new ManualTimeProvider();
        var listener = new FrontDoorListener("test", [new IPEndPoint(IPAddress.Any, 0)], new RelayLimits { MaxConnections = 10, MaxConnectionsPerClient = 2 },
            HandOn(handed.Writer), logger, relayMetrics, time);
        listener.Start();
        var port = listener.LocalEndpoints[0].Port;
        var sockets = new List<Socket>();
        async Task<Socket> From(string address)
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            sockets.Add(socket);
            socket.Bind(new IPEndPoint(IPAddress.Parse(address), 0));
            await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port)).WaitAsync(Timeouts.Default);
            return socket;
        }
        // Reset: the reset may come before the connect completes.
        async Task<bool> RefusedFrom(string address)
        {
            try
            {
                return await Loopback.IsClosedByPeerAsync(await From(address));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                return true;
            }
        }
        async Task<(Socket Socket, Action End)> Next() => await handed.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);
        try
        {
            await From("127.0.0.1");
            var first = await Next();
            await From("127.0.0.1");
            await Next();

            Assert.True(await RefusedFrom("127.0.0.1"));
            Assert.Equal(1, metrics[Refused]);
            var warning = Assert.Single(logger.Named("ClientConnectionLimitReached"));
            Assert.Equal(LogLevel.Warning, warning.Level);
            // The client's address only at Debug: at default level, on a front door with one destination, it would pair
            // the two.
            Assert.DoesNotContain("127.0.0.1", warning.Message, StringComparison.Ordinal);
            var refused = Assert.Single(logger.Named("ClientConnectionLimitRefused"));
            Assert.Equal(IPAddress.Loopback, refused.Value("Client"));
            Assert.Equal(LogLevel.Debug, refused.Level);
            Assert.Empty(logger.Named("ConnectionLimitReached"));

            // No pause: another client is admitted with the clock standing still.
            var other = await From("127.0.0.2");
            Assert.Equal(other.LocalEndPoint, (await Next()).Socket.RemoteEndPoint);
            Assert.Equal(3, listener.OpenConnections);

            // A slot given back is the first client's again, and only one.
            first.End();
            var again = await From("127.0.0.1");
            Assert.Equal(again.LocalEndPoint, (await Next()).Socket.RemoteEndPoint);
            Assert.True(await RefusedFrom("127.0.0.1"));
            Assert.Equal(2, metrics[Refused]);
        }
        finally
        {
            sockets.ForEach(s => s.Dispose());
            await listener.DisposeAsync();
        }
    }

    /// <summary>Stopping ends the pause after a refusal at once: here the clock never moves, so it would not end by itself.</summary>
    [Fact]
    public async Task Stopping_ends_the_pause_after_a_refusal()
    {
        await using var full = await FullListener.StartAsync();
        await Timeouts.WaitUntilAsync(() => full.Time.ArmedTimers > 0);

        var stop = full.Listener.StopAsync();
        // The accept loop has ended: the drain begins.
        Assert.Equal(1, (await full.Logger.WaitForAsync("Draining")).Value("Open"));
        full.Held.End();
        await stop.WaitAsync(Timeouts.Default);
        Assert.Equal(1, full.Metrics[Refused]);
    }

    /// <summary>
    /// A listener with a limit of one connection, on a clock that moves only when told: its one slot held by a client,
    /// and one client more refused (so the accept loop pauses).
    /// </summary>
    private sealed class FullListener : IAsyncDisposable
    {
        private readonly System.Threading.Channels.Channel<(Socket Socket, Action End)> _handed =
            System.Threading.Channels.Channel.CreateUnbounded<(Socket Socket, Action End)>();
        private readonly Socket _holder = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        private FullListener()
        {
            var relayMetrics = new RelayMetrics();
            Metrics = new MetricsRecorder(relayMetrics.Meter);
            Listener = Start(HandOn(_handed.Writer), Logger, new RelayLimits { MaxConnections = 1 }, relayMetrics, Time);
        }

        public ManualTimeProvider Time { get; } = new();

        public RecordingLogger Logger { get; } = new();

        public MetricsRecorder Metrics { get; }

        public FrontDoorListener Listener { get; }

        /// <summary>The connection that holds the slot.</summary>
        public (Socket Socket, Action End) Held { get; private set; }

        public static async Task<FullListener> StartAsync()
        {
            var full = new FullListener();
            try
            {
                await full._holder.ConnectAsync(full.Listener.LocalEndpoints[0]).WaitAsync(Timeouts.Default);
                full.Held = await full.NextHandedAsync();
                Assert.True(await IsRefusedAsync(full.Listener));
                Assert.Equal(1, full.Metrics[Refused]);
                // The pause after that refusal has begun (its timer comes just after the refusal is seen).
                await Timeouts.WaitUntilAsync(() => full.Time.ArmedTimers > 0);
                return full;
            }
            catch
            {
                await full.DisposeAsync();
                throw;
            }
        }

        /// <summary>The next connection the listener handed on.</summary>
        public async Task<(Socket Socket, Action End)> NextHandedAsync() => await _handed.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

        /// <summary>
        /// Stops the listener at once, moving the clock on a pause at a time until it has stopped: should a pause ignore the
        /// stop, the test fails rather than hangs.
        /// </summary>
        public async ValueTask DisposeAsync()
        {
            _holder.Dispose();
            Held.End?.Invoke();
            var stopping = Listener.StopAsync(new CancellationToken(canceled: true));
            using (var cts = new CancellationTokenSource(Timeouts.Default))
            {
                while (!stopping.IsCompleted)
                {
                    Time.Advance(FrontDoorListener.AcceptPause);
                    await Task.Delay(10, cts.Token);
                }
            }
            await Listener.DisposeAsync();
            Metrics.Dispose();
        }
    }

    /// <summary>
    /// A handler that hands each connection on to <paramref name="handed"/> as a way to end it (once: its socket closed,
    /// its end reported), ended also when the listener closes all (so a failed test's stop does not wait for it).
    /// </summary>
    private static ConnectionHandler HandOn(System.Threading.Channels.ChannelWriter<(Socket Socket, Action End)> handed) =>
        (socket, id, end, closeAll) =>
        {
            var ended = 0;
            void End()
            {
                if (Interlocked.Exchange(ref ended, 1) == 0)
                {
                    socket.Dispose();
                    end.Ended(id, null);
                }
            }
            closeAll.Register(End);
            handed.TryWrite((socket, End));
            return Task.FromResult(true);
        };

    private const string Accepted = "passage.relay.connections.accepted";
    private const string Refused = "passage.relay.connections.refused/connection_limit_reached";

    private static FrontDoorListener Start(ConnectionHandler handler, ILogger logger, RelayLimits limits, RelayMetrics? metrics = null, TimeProvider? time = null)
    {
        var listener = new FrontDoorListener("test", [new IPEndPoint(IPAddress.Loopback, 0)], limits, handler, logger, metrics ?? new RelayMetrics(), time ?? TimeProvider.System);
        listener.Start();
        return listener;
    }

    /// <summary>Connects to <paramref name="listener"/>: whether the connection was reset or closed (the reset can come before the connect completes).</summary>
    private static async Task<bool> IsRefusedAsync(FrontDoorListener listener)
    {
        try
        {
            using var socket = await ConnectAsync(listener);
            return await Loopback.IsClosedByPeerAsync(socket);
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            return true;
        }
    }

    private static async Task<Socket> ConnectAsync(FrontDoorListener listener)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.LocalEndpoints[0]).WaitAsync(Timeouts.Default);
        return socket;
    }
}
