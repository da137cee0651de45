using System.Net.Sockets;
using System.Security.Cryptography;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>
/// The pump between two real loopback connections:
/// app ⇄ [relayIn | pump | relayOut] ⇄ server.
/// </summary>
public sealed class BytePumpTests : IAsyncLifetime
{
    private Socket _app = null!;
    private Socket _relayIn = null!;
    private Socket _relayOut = null!;
    private Socket _server = null!;

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

    private Task<PumpResult> StartPump(PumpOptions? options = null, ReadOnlyMemory<byte> preamble = default, CancellationToken token = default) =>
        BytePump.RunAsync(new SocketConnection(_relayIn), new SocketConnection(_relayOut), options, preamble, token);

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
    public async Task An_idle_direction_waits_with_zero_byte_reads_and_holds_no_buffer()
    {
        var client = new RecordingConnection(new SocketConnection(_relayIn));
        var upstream = new RecordingConnection(new SocketConnection(_relayOut));
        var pump = BytePump.RunAsync(client, upstream);

        // Before any data, each side has been asked only for a zero-byte read.
        await WaitUntil(() => client.ReadSizes.Count > 0 && upstream.ReadSizes.Count > 0);
        Assert.All(client.ReadSizes, size => Assert.Equal(0, size));
        Assert.All(upstream.ReadSizes, size => Assert.Equal(0, size));

        await Loopback.SendAllAsync(_app, "ping"u8.ToArray());
        Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(_server, limit: 4));
        // After a short read the buffer goes back: the next wait is a zero-byte read again.
        await WaitUntil(() => client.ReadSizes.Count >= 3);
        Assert.Equal(0, client.ReadSizes[0]);
        Assert.True(client.ReadSizes[1] > 0);
        Assert.Equal(0, client.ReadSizes[2]);

        _app.Shutdown(SocketShutdown.Send);
        _server.Shutdown(SocketShutdown.Send);
        Assert.Equal(PumpEnd.Completed, (await pump.WaitAsync(Timeouts.Default)).End);
    }

    private static async Task WaitUntil(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }

    /// <summary>Passes everything through to a real connection and records the buffer size of each read.</summary>
    private sealed class RecordingConnection(IDuplexConnection inner) : IDuplexConnection
    {
        private readonly List<int> _reads = new();

        public IReadOnlyList<int> ReadSizes { get { lock (_reads) { return _reads.ToArray(); } } }

        public Socket? Socket => null;

        public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        {
            lock (_reads)
            {
                _reads.Add(buffer.Length);
            }
            return inner.ReadAsync(buffer, cancellationToken);
        }

        public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => inner.WriteAsync(data, cancellationToken);

        public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => inner.CompleteWritesAsync(cancellationToken);

        public void Abort() => inner.Abort();

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
