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
/// <c>/headers</c> lists what arrived; <c>/ws</c> is a WebSocket echo; <c>/trailers/N</c> streams N bytes and ends
/// with trailer fields (<c>x-sha256</c>, <c>x-length</c>). <c>/hash</c> also lists the request's trailer fields.
/// <c>/drop</c> closes the connection without an answer; <c>/silent</c> never answers; <c>/stall</c> sends a little
/// and then nothing; <c>/drip</c> sends a byte every 200 ms, fifteen times.
/// </summary>
internal sealed class TunnelBackend : IAsyncDisposable
{
    private readonly WebApplication _app;

    private TunnelBackend(WebApplication app) => _app = app;

    public int Port { get; private set; }

    /// <summary>Requests seen so far.</summary>
    public int Requests;

    /// <summary>Requests to <c>/drop</c> seen so far.</summary>
    public int Drops;

    public static async Task<TunnelBackend> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.Limits.MaxRequestBodySize = null;
            // Room for the field lines the tunnel adds (Via) to a head at the client end's bounds, Kestrel's defaults: a head
            // the client end takes is to reach this backend whole, whose own bounds are not what the tests are about.
            var defaults = new KestrelServerLimits();
            kestrel.Limits.MaxRequestHeaderCount = 2 * defaults.MaxRequestHeaderCount;
            kestrel.Limits.MaxRequestHeadersTotalSize = 2 * defaults.MaxRequestHeadersTotalSize;
            // Field values byte for byte (obs-text), so /headers shows what crossed.
            kestrel.RequestHeaderEncodingSelector = _ => System.Text.Encoding.Latin1;
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
            var trailers = context.Features.Get<IHttpRequestTrailersFeature>() is { Available: true } feature && feature.Trailers.Count > 0
                ? " trailers=" + string.Join(";", feature.Trailers.Select(t => $"{t.Key.ToLowerInvariant()}:{t.Value}"))
                : "";
            await context.Response.WriteAsync($"{context.Request.Method} {length} {Convert.ToHexString(sha.GetHashAndReset())} cl={context.Request.ContentLength?.ToString() ?? "none"} te={chunked}{trailers}");
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
            // Kestrel takes writes after the connection is gone without an error (RequestAborted tells): without the check,
            // a client that left a 1 GB body early could keep this loop making pattern bytes past the test's end (a
            // backend's stop timed out after 30 s on a loaded machine).
            for (long sent = 0; sent < total && !context.RequestAborted.IsCancellationRequested;)
            {
                var chunk = (int)Math.Min(64 * 1024, total - sent);
                await context.Response.Body.WriteAsync(Pattern(sent, chunk));
                sent += chunk;
            }
        }
        else if (path.StartsWith("/trailers/", StringComparison.Ordinal))
        {
            // N pattern bytes, then trailers: their hash and length, and two fields no trailer section may pass on.
            // Kestrel cannot send HTTP/1.1 trailers, but leaves a body alone whose chunked framing the app writes itself.
            var total = int.Parse(path["/trailers/".Length..], System.Globalization.CultureInfo.InvariantCulture);
            context.Response.Headers.Trailer = "x-sha256, x-length";
            if (HttpMethods.IsHead(context.Request.Method))
            {
                return;
            }
            context.Response.Headers.TransferEncoding = "chunked";
            using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            for (var sent = 0; sent < total;)
            {
                var chunk = Pattern(sent, Math.Min(64 * 1024, total - sent));
                sha.AppendData(chunk);
                await context.Response.Body.WriteAsync(Encoding.ASCII.GetBytes($"{chunk.Length:x}\r\n"));
                await context.Response.Body.WriteAsync(chunk);
                await context.Response.Body.WriteAsync("\r\n"u8.ToArray());
                sent += chunk.Length;
            }
            await context.Response.WriteAsync($"0\r\nx-sha256: {Convert.ToHexString(sha.GetHashAndReset())}\r\nx-length: {total}\r\nContent-Length: 1\r\nSet-Cookie: a=b\r\n\r\n");
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
        else if (path == "/steer")
        {
            // A backend sending the fields the two ends use to talk to each other.
            context.Response.Headers["passage-tunnel-status"] = "206";
            context.Response.Headers["passage-tunnel-encoding"] = "br";
            context.Response.Headers["passage-tunnel-length"] = "99";
            await context.Response.WriteAsync("plain ok");
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
            // ?seconds=N waits N seconds instead of 2.
            var seconds = int.TryParse(context.Request.Query["seconds"], out var asked) ? asked : 2;
            await context.Response.WriteAsync("first;");
            await context.Response.Body.FlushAsync();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            await context.Response.WriteAsync("second");
        }
        else if (path == "/drop")
        {
            Interlocked.Increment(ref Drops);
            // A clean close (FIN), as a backend that exits or closes an idle connection does; Abort alone resets it.
            context.Features.Get<Microsoft.AspNetCore.Connections.Features.IConnectionSocketFeature>()!.Socket.Shutdown(System.Net.Sockets.SocketShutdown.Both);
            context.Abort();
        }
        else if (path is "/silent" or "/stall")
        {
            if (path == "/stall")
            {
                await context.Response.WriteAsync("first;");
                await context.Response.Body.FlushAsync();
            }
            await Task.Delay(Timeout.Infinite, context.RequestAborted).ContinueWith(_ => { }, TaskScheduler.Default);
        }
        else if (path == "/drip")
        {
            for (var i = 0; i < 15; i++)
            {
                await Task.Delay(200);
                await context.Response.WriteAsync(".");
                await context.Response.Body.FlushAsync();
            }
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
