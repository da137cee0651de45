using System.IO.Pipelines;
using System.Net;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A request body streamed from its source (<see cref="StreamingContent"/>) through the .NET HTTP/2 client, as the client
/// end sends an application's body to the server end. That client sends a request again when its server refuses the
/// stream (REFUSED_STREAM, or a GOAWAY that leaves it out: not processed, RFC 9113 §8.7), even once part of its body has
/// gone: the content was asked to serialize itself a second time.
/// </summary>
public sealed class StreamingContentRetryTests
{
    /// <summary>
    /// The second serialization read on from where the first had stopped, so the server got the body's rest as a whole body
    /// (a body of unknown length has nothing to tell it was cut). The body is sent once: the request fails instead.
    /// </summary>
    [Fact]
    public async Task A_request_the_server_refuses_after_part_of_its_body_is_not_sent_again_with_the_rest()
    {
        var attempts = 0;
        var refused = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var secondAttempt = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var delivered = new List<string>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http2));
        await using var server = builder.Build();
        server.Run(async context =>
        {
            if (Interlocked.Increment(ref attempts) == 1)
            {
                // Part of the body has come; the stream is refused, as a server does that did not process it.
                var first = new byte[64];
                _ = await context.Request.Body.ReadAsync(first);
                context.Features.GetRequiredFeature<IHttpResetFeature>().Reset(0x7);
                refused.TrySetResult();
                return;
            }
            secondAttempt.TrySetResult();
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            lock (delivered)
            {
                delivered.Add(Encoding.ASCII.GetString(body.ToArray()));
            }
            await context.Response.WriteAsync("whole?");
        });
        await server.StartAsync().WaitAsync(Timeouts.Default);
        var port = new Uri(server.Urls.First()).Port;

        var source = new Pipe();
        using var client = new HttpMessageInvoker(new SocketsHttpHandler(), disposeHandler: true);
        using var content = new StreamingContent(source.Reader.AsStream(), compress: false, CancellationToken.None);
        using var request = new HttpRequestMessage(HttpMethod.Post, $"http://127.0.0.1:{port}/upload")
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = content,
        };
        var sending = client.SendAsync(request, CancellationToken.None);
        await source.Writer.WriteAsync("first part, "u8.ToArray());
        await refused.Task.WaitAsync(Timeouts.Default);
        // The rest of the body comes once the client has either sent the request again or given it up.
        await Task.WhenAny(secondAttempt.Task, sending).WaitAsync(Timeouts.Default);
        await source.Writer.WriteAsync("second part"u8.ToArray());
        await source.Writer.CompleteAsync();

        await Assert.ThrowsAnyAsync<HttpRequestException>(() => sending.WaitAsync(Timeouts.Default));
        lock (delivered)
        {
            Assert.Empty(delivered);
        }
        await content.EndAsync();
    }
}
