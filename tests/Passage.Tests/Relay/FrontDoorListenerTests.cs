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

    private static FrontDoorListener Start(ConnectionHandler handler, ILogger logger, RelayLimits limits)
    {
        var listener = new FrontDoorListener("test", [new IPEndPoint(IPAddress.Loopback, 0)], limits, handler, logger, new RelayMetrics(), TimeProvider.System);
        listener.Start();
        return listener;
    }

    private static async Task<Socket> ConnectAsync(FrontDoorListener listener)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(listener.LocalEndpoints[0]).WaitAsync(Timeouts.Default);
        return socket;
    }
}
