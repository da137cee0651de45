using System.Net;
using System.Net.Sockets;
using Passage.Tests.Infrastructure;
using Passage.Transport;

namespace Passage.Tests.Transport;

/// <summary>Dialing resolved addresses on loopback, some of which swallow the SYN, refuse, or answer.</summary>
public sealed class TcpDialerTests
{
    [Fact]
    public async Task An_address_that_swallows_the_syn_does_not_hold_up_the_next_one()
    {
        // The echo server's port first, from the system: 127.0.0.1 is busy with other tests' ports, 127.0.0.2 with none.
        await using var echo = new EchoServer(IPAddress.Loopback);
        using var blackhole = new Blackhole(IPAddress.Parse("127.0.0.2"), echo.Port);

        // Well inside the 20 s deadline: without trying the next address beside it, the dial would wait for it.
        var result = await TcpDialer.ConnectAsync(
            [IPAddress.Parse("127.0.0.2"), IPAddress.Loopback], blackhole.Port, TimeSpan.FromSeconds(20)).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        await using var connection = result.Connection;
        Assert.Equal(DialError.None, result.Error);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, blackhole.Port), result.Reached);
    }

    [Fact]
    public async Task The_next_address_starts_when_the_attempt_delay_has_passed_on_the_callers_clock()
    {
        // The echo server's port first, from the system: 127.0.0.1 is busy with other tests' ports, 127.0.0.9 with none.
        await using var echo = new EchoServer(IPAddress.Loopback);
        using var blackhole = new Blackhole(IPAddress.Parse("127.0.0.9"), echo.Port);
        var time = new ManualTimeProvider();

        var dial = TcpDialer.ConnectAsync([IPAddress.Parse("127.0.0.9"), IPAddress.Loopback], blackhole.Port, Timeout.InfiniteTimeSpan, time).AsTask();
        await Task.Delay(300);
        Assert.False(dial.IsCompleted, "the second address started before the clock moved");

        time.Advance(TcpDialer.AttemptDelay);
        var result = await dial.WaitAsync(Timeouts.Default);
        await using var connection = result.Connection;
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, blackhole.Port), result.Reached);
    }

    [Fact]
    public async Task An_ipv4_mapped_ipv6_address_is_dialed_as_its_ipv4_address()
    {
        await using var echo = new EchoServer(IPAddress.Loopback);
        var result = await TcpDialer.ConnectAsync([IPAddress.Parse("::ffff:127.0.0.1")], echo.Port, Timeouts.Default).AsTask().WaitAsync(Timeouts.Default);

        await using var connection = result.Connection;
        Assert.Equal(DialError.None, result.Error);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, echo.Port), result.Reached);
    }

    [Fact]
    public async Task A_refusal_moves_on_to_the_next_address()
    {
        await using var echo = new EchoServer(IPAddress.Loopback);

        var result = await TcpDialer.ConnectAsync([IPAddress.Parse("127.0.0.3"), IPAddress.Loopback], echo.Port, TimeSpan.FromSeconds(20)).AsTask().WaitAsync(Timeouts.Default);

        await using var connection = result.Connection;
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, echo.Port), result.Reached);
    }

    [Fact]
    public async Task Every_address_refusing_is_refused_and_every_one_silent_is_timed_out()
    {
        var closed = Loopback.ClosedPort();

        var refused = await TcpDialer.ConnectAsync([IPAddress.Loopback, IPAddress.Parse("127.0.0.4")], closed, TimeSpan.FromSeconds(20)).AsTask().WaitAsync(Timeouts.Default);
        Assert.Null(refused.Connection);
        Assert.Equal(DialError.Refused, refused.Error);
        Assert.Equal(SocketError.ConnectionRefused, refused.SocketError);

        using var first = new Blackhole(IPAddress.Parse("127.0.0.5"));
        using var second = new Blackhole(IPAddress.Parse("127.0.0.6"), first.Port);
        var silent = await TcpDialer.ConnectAsync([IPAddress.Parse("127.0.0.5"), IPAddress.Parse("127.0.0.6")], first.Port, TimeSpan.FromMilliseconds(800)).AsTask().WaitAsync(Timeouts.Default);
        Assert.Null(silent.Connection);
        Assert.Equal(DialError.TimedOut, silent.Error);
    }

    [Fact]
    public async Task The_callers_cancellation_throws_and_ends_every_attempt()
    {
        using var first = new Blackhole(IPAddress.Parse("127.0.0.7"));
        using var second = new Blackhole(IPAddress.Parse("127.0.0.8"), first.Port);
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(600));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() =>
            TcpDialer.ConnectAsync([IPAddress.Parse("127.0.0.7"), IPAddress.Parse("127.0.0.8")], first.Port, TimeSpan.FromSeconds(20), cancellationToken: cts.Token)
                .AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
    }
}
