using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>A request body cut off for its sender's silence is an ordinary end: the 408, and no error in the log.</summary>
public sealed class TunnelSenderIdleLogTests
{
    [Theory]
    [InlineData("Content-Length: 100\r\n\r\n0123456789")]
    [InlineData("Transfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n")]
    public async Task A_body_cut_off_at_the_idle_timeout_is_answered_408_and_logs_no_error(string rest)
    {
        await using var backend = await TunnelBackend.StartAsync();
        var log = new RecordingLogger();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Trace));
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, idleTimeout: TimeSpan.FromSeconds(1),
            serverIdleTimeout: Timeout.InfiniteTimeSpan, clientLoggerFactory: loggers);
        using var cts = new CancellationTokenSource(Timeouts.Default);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, ends.HttpPort), cts.Token);

        // Part of the body, then nothing: the client end answers 408; the application reads it whole and leaves.
        await socket.SendAsync(Encoding.ASCII.GetBytes("POST /hash HTTP/1.1\r\nHost: app\r\n" + rest), cts.Token);
        var answer = new StringBuilder();
        var buffer = new byte[8192];
        while (!answer.ToString().EndsWith("\r\n0\r\n\r\n", StringComparison.Ordinal))
        {
            var n = await socket.ReceiveAsync(buffer, cts.Token);
            Assert.True(n > 0, $"the connection ended before the answer did: {answer}");
            answer.Append(Encoding.ASCII.GetString(buffer, 0, n));
        }
        socket.Shutdown(SocketShutdown.Send);
        try
        {
            while (await socket.ReceiveAsync(buffer, cts.Token) > 0)
            {
            }
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
        {
            // Ended either way; the answer was whole.
        }

        Assert.StartsWith("HTTP/1.1 408 ", answer.ToString(), StringComparison.Ordinal);
        // Kestrel's handling of the connection's end, the rest of the body read and dropped included, is over.
        var errors = log.Entries.Where(e => e.Level >= LogLevel.Error).Select(e => $"{e.Level} {e.Name}: {e.Message} {e.Exception?.GetType().Name}: {e.Exception?.Message}");
        Assert.Empty(errors);
    }

    [Fact]
    public async Task The_server_ends_408_for_a_body_the_client_end_stopped_sending_logs_no_warning_of_HTTP_2_fields()
    {
        await using var backend = await TunnelBackend.StartAsync();
        var log = new RecordingLogger();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(log).SetMinimumLevel(LogLevel.Trace));
        // The client end's clock off: the server end, timing what the client end passes on, answers over HTTP/2.
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, idleTimeout: Timeout.InfiniteTimeSpan,
            serverIdleTimeout: TimeSpan.FromSeconds(1), serverLoggerFactory: loggers);

        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, "POST /hash HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\n0123456789");

        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        // An HTTP/2 answer has no Connection field (RFC 9113 §8.2.2): Kestrel dropped it with a warning, one per request.
        var warnings = log.Entries.Where(e => e.Level >= LogLevel.Warning).Select(e => $"{e.Level} {e.Name}: {e.Message}");
        Assert.DoesNotContain(warnings, w => w.Contains("Connection", StringComparison.Ordinal));
    }
}
