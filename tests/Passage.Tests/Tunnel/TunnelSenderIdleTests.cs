using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A request body whose sender goes quiet: after <c>system.idleTimeout</c> without a byte of it, the exchange is cut off
/// and the application answered 408, rather than holding the backend's connection (one of a capped number) for good.
/// </summary>
public sealed class TunnelSenderIdleTests
{
    [Fact]
    public async Task An_application_that_stops_sending_its_body_gets_408_after_the_idle_timeout()
    {
        await using var backend = await TunnelBackend.StartAsync();
        // The server end's own clock (which times the client end's bytes) far off: it is the client end that answers.
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, idleTimeout: TimeSpan.FromSeconds(1), serverIdleTimeout: Timeout.InfiniteTimeSpan);

        // 10 of the 100 bytes announced, then nothing.
        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, "POST /hash HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\n0123456789");

        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Contains("error=http_request_error", answer, StringComparison.Ordinal);
        Assert.Contains("Connection: close", answer, StringComparison.OrdinalIgnoreCase);
        // The backend got the request, and never a whole body to answer.
        Assert.Equal(1, Volatile.Read(ref backend.Requests));
    }

    [Fact]
    public async Task The_server_end_cuts_off_a_body_the_client_end_stops_sending_and_its_408_reaches_the_application()
    {
        await using var backend = await TunnelBackend.StartAsync();
        // The client end's clock off: the server end, timing what the client end passes on, answers.
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, idleTimeout: Timeout.InfiniteTimeSpan, serverIdleTimeout: TimeSpan.FromSeconds(1));

        var answer = await RawHttp1.SendHeadAsync(ends.HttpPort, "POST /hash HTTP/1.1\r\nHost: app\r\nContent-Length: 100\r\n\r\n0123456789");

        Assert.StartsWith("HTTP/1.1 408 ", answer, StringComparison.Ordinal);
        Assert.Contains("error=http_request_error", answer, StringComparison.Ordinal);
        // As the client end's own 408 does (RFC 9110 §15.5.9): the application is to close rather than hold a connection
        // whose body was given up, which Kestrel drains and, with nothing more coming, resets.
        Assert.Contains("\r\nConnection: close\r\n", answer, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task A_body_that_keeps_coming_slower_than_the_idle_timeout_in_total_goes_through()
    {
        await using var backend = await TunnelBackend.StartAsync();
        await using var ends = await InProcessEnds.StartAsync(backend.Port, clientEnd: true, idleTimeout: TimeSpan.FromSeconds(3));
        using var cts = new CancellationTokenSource(Timeouts.Default);

        // Eight bytes 500 ms apart: 4 s in all, more than the idle timeout, but never 3 s without a byte.
        var answer = await RawHttp1.SendChunkedAsync(ends.HttpPort, "POST", "/hash", new Trickle(8, TimeSpan.FromMilliseconds(500)), "", "", cts.Token);

        Assert.Equal(200, answer.Status);
        Assert.StartsWith("POST 8 ", System.Text.Encoding.ASCII.GetString(answer.Body), StringComparison.Ordinal);
    }

    /// <summary>A body of <c>count</c> single bytes, each after <c>pause</c>.</summary>
    private sealed class Trickle(int count, TimeSpan pause) : Stream
    {
        private int _left = count;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_left == 0 || buffer.IsEmpty)
            {
                return 0;
            }
            await Task.Delay(pause, cancellationToken);
            _left--;
            buffer.Span[0] = (byte)'x';
            return 1;
        }

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
