using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Http;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>The server end's pooled way to the backend (requests without trailers): a request's exchange ends with its body's copy.</summary>
public sealed class PooledExchangeTests
{
    /// <summary>
    /// The pooled HTTP client sends a request's body before it reads the answer, except for a request with
    /// <c>Expect: 100-continue</c> (which the tunnel passes on): that body is sent while the answer is read, and when the
    /// answer's head fails (malformed, cut off) the client closes the connection and leaves the copy running. The copy then
    /// read the request's body (which the server reuses for the connection's next request) after the 502 had ended the
    /// request. Here the backend answers a malformed head while the body is still coming, in a read that takes no notice of
    /// cancellation; then, with a read that does (as the server's does), the exchange ends at once.
    /// </summary>
    [Fact]
    public async Task The_exchange_ends_only_once_the_body_copy_has_ended_even_when_the_answer_fails()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        using var invoker = new HttpMessageInvoker(TunnelServer.CreateBackendHandler(new TunnelOptions(), new BackendConnections(null)), disposeHandler: true);

        var held = new HeldStream(honoursCancellation: false);
        var answering = AnswerMalformedAsync(listener);
        var forwarding = ForwardAsync(invoker, port, held, out var context, out var content);
        await answering.WaitAsync(Timeouts.Default);
        // Once the answer has failed the copy is told to end; the exchange is not over while it still reads.
        var first = await Task.WhenAny(held.Cancelled, forwarding).WaitAsync(Timeouts.Default);
        Assert.Same(held.Cancelled, first);
        Assert.False(forwarding.IsCompleted);
        Assert.Null(content.Result);

        held.Release();
        await forwarding.WaitAsync(Timeouts.Default);
        Assert.NotNull(content.Result);
        Assert.Equal(StatusCodes.Status502BadGateway, context.Response.StatusCode);

        var cancellable = new HeldStream(honoursCancellation: true);
        answering = AnswerMalformedAsync(listener);
        forwarding = ForwardAsync(invoker, port, cancellable, out context, out content);
        await answering.WaitAsync(Timeouts.Default);
        await forwarding.WaitAsync(Timeouts.Default);
        Assert.Equal(BodyCopyResult.Canceled, content.Result);
        Assert.Equal(StatusCodes.Status502BadGateway, context.Response.StatusCode);
    }

    private static Task ForwardAsync(HttpMessageInvoker invoker, int port, Stream body, out DefaultHttpContext context, out StreamingContent content)
    {
        context = new DefaultHttpContext();
        content = new StreamingContent(body, compress: false, CancellationToken.None);
        content.Headers.ContentLength = 1000;
        var message = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/upload") { Content = content };
        // As an application's request carries it through the client end (Expect is end-to-end).
        message.Headers.ExpectContinue = true;
        return ExchangeForwarder.ForwardAsync(context, invoker, message, compressResponse: false, fromPeer: false, NullLogger.Instance, CancellationToken.None);
    }

    /// <summary>Reads one request's head and the first byte of its body, then answers with a head the HTTP client refuses.</summary>
    private static async Task AnswerMalformedAsync(TcpListener listener)
    {
        var socket = await listener.AcceptSocketAsync();
        var stream = new NetworkStream(socket, ownsSocket: true);
        using var reader = new Http1Reader(stream);
        while (await reader.ReadLineAsync(8192, CancellationToken.None) is { Length: > 0 })
        {
        }
        // Asked to, the client sends the body concurrently with reading the answer: a first byte of it, then the answer.
        await stream.WriteAsync("HTTP/1.1 100 Continue\r\n\r\n"u8.ToArray());
        Assert.Equal(1, await reader.ReadAsync(new byte[1], CancellationToken.None));
        await stream.WriteAsync("HTTP/1.1 200 OK\r\nno field here\r\n\r\n"u8.ToArray());
        // Left open: the client closes it.
        _ = stream.CopyToAsync(Stream.Null).ContinueWith(_ => stream.Dispose(), TaskScheduler.Default);
    }

    /// <summary>A body of one byte, then reads that wait until released (or, when it honours it, their token is cancelled).</summary>
    private sealed class HeldStream(bool honoursCancellation) : Passage.Transport.ReadOnlyStream
    {
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private readonly TaskCompletionSource _cancelled = new(TaskCreationOptions.RunContinuationsAsynchronously);

        /// <summary>Completes once the token of a waiting read is cancelled.</summary>
        public Task Cancelled => _cancelled.Task;

        public void Release() => _released.TrySetResult();

        private bool _started;

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (!_started)
            {
                // A first piece, with which the HTTP client sends the request's head; then the body waits.
                if (buffer.IsEmpty)
                {
                    return 0;
                }
                _started = true;
                buffer.Span[0] = (byte)'x';
                return 1;
            }
            using var registration = cancellationToken.Register(() => _cancelled.TrySetResult());
            await (honoursCancellation ? _released.Task.WaitAsync(cancellationToken) : _released.Task);
            return 0;
        }
    }
}
