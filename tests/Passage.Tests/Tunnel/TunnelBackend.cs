using System.Net;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// The service behind the server end: plain HTTP/1.1 on loopback. <c>/hash</c> reads the body and answers its
/// SHA-256 and length; <c>/echo</c> streams the body back; <c>/bytes/N</c> streams N deterministic bytes;
/// <c>/headers</c> lists what arrived; <c>/ws</c> is a WebSocket echo.
/// </summary>
internal sealed class TunnelBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TunnelBackend(WebApplication app) => _app = app;

    public int Port { get; private set; }

    /// <summary>Requests seen so far, by path.</summary>
    public int Requests;

    public static async Task<TunnelBackend> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Listen(IPAddress.Loopback, 0, listen => listen.Protocols = HttpProtocols.Http1);
        });
        var app = builder.Build();
        var backend = new TunnelBackend(app);
        app.UseWebSockets();
        app.Run(context => backend.HandleAsync(context));
        await app.StartAsync().WaitAsync(Timeouts.Default);
        backend.Port = new Uri(app.Urls.First()).Port;
        return backend;
    }

    /// <summary>The deterministic content of <c>/bytes/N</c>: byte i is (i * 7 + i / 65536) mod 251.</summary>
    public static byte[] Pattern(long offset, int count)
    {
        var data = new byte[count];
        for (var i = 0; i < count; i++)
        {
            var at = offset + i;
            data[i] = (byte)(((at * 7) + (at / 65536)) % 251);
        }
        return data;
    }

    private async Task HandleAsync(HttpContext context)
    {
        Interlocked.Increment(ref Requests);
        var path = context.Request.Path.Value ?? "/";
        if (path == "/hash")
        {
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            var buffer = new byte[64 * 1024];
            long length = 0;
            int n;
            while ((n = await context.Request.Body.ReadAsync(buffer)) > 0)
            {
                sha.AppendData(buffer, 0, n);
                length += n;
            }
            var chunked = context.Request.Headers.TransferEncoding.ToString();
            await context.Response.WriteAsync($"{context.Request.Method} {length} {Convert.ToHexString(sha.GetHashAndReset())} cl={context.Request.ContentLength?.ToString() ?? "none"} te={chunked}");
        }
        else if (path == "/echo")
        {
            context.Response.ContentType = context.Request.ContentType;
            await context.Request.Body.CopyToAsync(context.Response.Body);
        }
        else if (path.StartsWith("/bytes/", StringComparison.Ordinal))
        {
            var total = long.Parse(path["/bytes/".Length..], System.Globalization.CultureInfo.InvariantCulture);
            if (context.Request.Query.ContainsKey("length"))
            {
                context.Response.ContentLength = total;
            }
            for (long sent = 0; sent < total;)
            {
                var chunk = (int)Math.Min(64 * 1024, total - sent);
                await context.Response.Body.WriteAsync(Pattern(sent, chunk));
                sent += chunk;
            }
        }
        else if (path == "/headers")
        {
            var text = new StringBuilder();
            text.Append(context.Request.Method).Append(' ').Append(context.Features.Get<IHttpRequestFeature>()!.RawTarget).Append('\n');
            foreach (var (name, values) in context.Request.Headers)
            {
                text.Append(name.ToLowerInvariant()).Append(": ").Append(values.ToString()).Append('\n');
            }
            await context.Response.WriteAsync(text.ToString());
        }
        else if (path == "/ws" && context.WebSockets.IsWebSocketRequest)
        {
            using var socket = await context.WebSockets.AcceptWebSocketAsync();
            var buffer = new byte[64 * 1024];
            while (true)
            {
                var received = await socket.ReceiveAsync(buffer, CancellationToken.None);
                if (received.MessageType == WebSocketMessageType.Close)
                {
                    await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
                    break;
                }
                await socket.SendAsync(buffer.AsMemory(0, received.Count), received.MessageType, received.EndOfMessage, CancellationToken.None);
            }
        }
        else if (path == "/slow")
        {
            await context.Response.WriteAsync("first;");
            await context.Response.Body.FlushAsync();
            await Task.Delay(TimeSpan.FromSeconds(2));
            await context.Response.WriteAsync("second");
        }
        else
        {
            await context.Response.WriteAsync($"{context.Request.Method} {path}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync().WaitAsync(Timeouts.Default);
        await _app.DisposeAsync();
    }
}
