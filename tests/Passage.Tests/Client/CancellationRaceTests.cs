using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Passage.Client;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using static Passage.Tests.Client.HostileRelayTests;

namespace Passage.Tests.Client;

/// <summary>A caller's cancellation racing a tunnel's opening, at many points of it.</summary>
public sealed class CancellationRaceTests
{
    private const int Rounds = 200;

    /// <summary>
    /// <see cref="PassageClient.ConnectAsync"/> cancelled at points spread over a tunnel's setup (before the request, while
    /// the relay dials, as its answer comes, after it), over HTTP/2 and over HTTP/1.1 CONNECT: each ends in the caller's
    /// cancellation or in a tunnel, which is disposed; either way nothing is left open (the destination's connections all
    /// end), and the relay stays up for the next tunnel.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_tunnel_cancelled_at_any_point_of_its_opening_leaves_nothing_open(bool http1)
    {
        await using var destination = new CountingEcho();
        await using var relay = http1 ? null : await ConnectHarness.StartAsync();
        using var identity = NodeIdentity.Create();
        using var http1Relay = new Socket(SocketType.Stream, ProtocolType.Tcp);
        http1Relay.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        http1Relay.Listen(64);
        var serving = http1 ? Http1FallbackTests.ServeHttp1OnlyAsync(http1Relay, identity, destination.Port, []) : Task.CompletedTask;
        var address = relay is null
            ? new PeerAddress(identity.NodeId, "127.0.0.1", ((IPEndPoint)http1Relay.LocalEndPoint!).Port)
            : new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort);
        await using var client = new PassageClient(new PassageClientOptions { Relays = [address], ProbeInterval = TimeSpan.FromHours(1) });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        // How long a setup takes here, to spread the cancelling over it and a little past it.
        var setup = Stopwatch.StartNew();
        for (var i = 0; i < 5; i++)
        {
            await using var tunnel = await client.ConnectAsync("origin.test", destination.Port).AsTask().WaitAsync(Timeouts.Default);
        }
        var span = setup.Elapsed / 5 * 1.5;

        int cancelled = 0, opened = 0;
        for (var round = 0; round < Rounds; round++)
        {
            using var cancelling = new CancellationTokenSource();
            var at = span * round / Rounds;
            var canceller = Task.Run(() =>
            {
                var started = Stopwatch.StartNew();
                while (started.Elapsed < at)
                {
                    Thread.SpinWait(20);
                }
                cancelling.Cancel();
            });
            try
            {
                var tunnel = await client.ConnectAsync("origin.test", destination.Port, cancelling.Token).AsTask().WaitAsync(Timeouts.Default);
                opened++;
                await tunnel.DisposeAsync();
            }
            catch (OperationCanceledException e) when (e.CancellationToken == cancelling.Token)
            {
                cancelled++;
            }
            await canceller;
        }

        await Timeouts.WaitUntilAsync(() => destination.Open == 0, () => $"{destination.Open} destination connections open ({opened} opened, {cancelled} cancelled)");
        Assert.True(client.Status.Single().IsUp);
        await using (var tunnel = await client.ConnectAsync("origin.test", destination.Port).AsTask().WaitAsync(Timeouts.Default))
        {
            await EchoServer.AssertEchoesAsync(tunnel, "ping"u8.ToArray());
        }
        Assert.True(cancelled > 0 && opened > 0, $"{opened} opened, {cancelled} cancelled: the cancelling did not spread over the setup");
        await client.DisposeAsync();
        http1Relay.Dispose();
        await serving.WaitAsync(Timeouts.Default);
    }

    /// <summary>
    /// The caller's cancelling races the relay's 200 itself: cancelled from the relay's side at points from just before
    /// its answer goes out to some way after. Each <see cref="PassageClient.ConnectAsync"/> ends in the caller's
    /// cancellation or in a tunnel, which is disposed; every tunnel request the relay saw is ended by the client (its
    /// stream reset or ended), none left open.
    /// </summary>
    [Fact]
    public async Task A_cancelling_that_races_the_relays_answer_leaves_no_tunnel_open()
    {
        var streams = new List<int>();
        CancellationTokenSource? current = null;
        TaskCompletionSource? scriptDone = null;
        var at = TimeSpan.Zero;
        await using var relay = HostileRelay.Start(async (connection, stream) =>
        {
            lock (streams)
            {
                streams.Add(stream);
            }
            connection.Echo(stream);
            var cancelling = Volatile.Read(ref current)!;
            var done = Volatile.Read(ref scriptDone)!;
            var after = at;
            var canceller = Task.Run(() =>
            {
                var started = Stopwatch.StartNew();
                while (started.Elapsed < after)
                {
                    Thread.SpinWait(5);
                }
                cancelling.Cancel();
            });
            await connection.SendAsync(HostileConnection.Answer(stream, 200));
            await canceller;
            done.TrySetResult();
        });
        await using var client = new PassageClient(new PassageClientOptions { Relays = [relay.Address], ProbeInterval = TimeSpan.FromHours(1) });
        await client.StartAsync().WaitAsync(Timeouts.Default);

        int cancelledRounds = 0, opened = 0;
        for (var round = 0; round < Rounds; round++)
        {
            using var cancelling = new CancellationTokenSource();
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref current, cancelling);
            Volatile.Write(ref scriptDone, done);
            at = TimeSpan.FromTicks(round * 5);
            try
            {
                await using var tunnel = await client.ConnectAsync("origin.test", 443, cancelling.Token).AsTask().WaitAsync(Timeouts.Default);
                opened++;
                // The token is not the tunnel's once it is returned: the tunnel works, however soon after its 200 it came.
                await AssertEchoesAsync(tunnel);
            }
            catch (OperationCanceledException e) when (e.CancellationToken == cancelling.Token)
            {
                cancelledRounds++;
            }
            // The relay's script is over (its cancelling done) before this round's source is disposed and replaced.
            await done.Task.WaitAsync(Timeouts.Default);
        }

        var connection = relay.Connections.Single();
        bool Ended(int stream) => connection.Received.Any(f => f.Stream == stream && (f.Type == RawHttp2.RstStream || (f.Flags & RawHttp2.EndStream) != 0));
        await Timeouts.WaitUntilAsync(
            () => { lock (streams) { return streams.All(Ended); } },
            () => { lock (streams) { return $"streams not ended by the client: {string.Join(", ", streams.Where(s => !Ended(s)))} ({opened} opened, {cancelledRounds} cancelled)"; } });
        Assert.Equal(Rounds, streams.Count);
        Assert.True(client.Status.Single().IsUp);
        Assert.True(cancelledRounds > 0 && opened > 0, $"{opened} opened, {cancelledRounds} cancelled: the cancelling did not spread over the answer");
    }

    /// <summary>An echo destination that counts its connections open.</summary>
    private sealed class CountingEcho : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        private readonly Task _accepting;
        private int _open;

        public CountingEcho()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen(256);
            _accepting = Loopback.AcceptEachAsync(_listener, peer =>
            {
                Interlocked.Increment(ref _open);
                _ = EchoAsync(peer);
            });
        }

        public int Port => ((IPEndPoint)_listener.LocalEndPoint!).Port;

        public int Open => Volatile.Read(ref _open);

        private async Task EchoAsync(Socket peer)
        {
            using (peer)
            {
                try
                {
                    var buffer = new byte[4096];
                    int n;
                    while ((n = await peer.ReceiveAsync(buffer, SocketFlags.None)) > 0)
                    {
                        await Loopback.SendAllAsync(peer, buffer.AsMemory(0, n));
                    }
                }
                catch (SocketException)
                {
                    // Reset: ended too.
                }
                finally
                {
                    Interlocked.Decrement(ref _open);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            _listener.Dispose();
            await _accepting;
        }
    }
}
