using System.Net.Sockets;
using System.Net;
using System.Text;
using Passage.Http;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// An HTTP/1.1 exchange written by hand on a socket, for what HttpClient and curl cannot send: a chunked request
/// body with trailer fields. The request framing is written here byte by byte; the answer is read with Passage's
/// own reader (whose framing the HttpClient and curl tests check independently).
/// </summary>
internal static class RawHttp1
{
    public sealed record Answer(int Status, IReadOnlyDictionary<string, string> Fields, byte[] Body);

    /// <summary>
    /// Sends <paramref name="method"/> <paramref name="target"/> with <paramref name="body"/> in chunks of up to
    /// 64 KiB, then <paramref name="trailerSection"/> (field lines, each ending in CRLF), while reading the answer. With
    /// <paramref name="close"/> false, no <c>Connection: close</c> is sent (Kestrel reads a Connection field that holds
    /// <c>close</c> as <c>close</c> alone, whatever else it names).
    /// </summary>
    public static async Task<Answer> SendChunkedAsync(int port, string method, string target, Stream body, string fields, string trailerSection, CancellationToken cancellationToken, bool close = true)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cancellationToken);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var sending = Task.Run(async () =>
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes($"{method} {target} HTTP/1.1\r\nHost: tunnel.test\r\n{fields}Transfer-Encoding: chunked\r\n{(close ? "Connection: close\r\n" : "")}\r\n"), cancellationToken);
            var buffer = new byte[64 * 1024];
            int n;
            while ((n = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                await stream.WriteAsync(Encoding.ASCII.GetBytes($"{n:x}\r\n"), cancellationToken);
                await stream.WriteAsync(buffer.AsMemory(0, n), cancellationToken);
                await stream.WriteAsync("\r\n"u8.ToArray(), cancellationToken);
            }
            await stream.WriteAsync(Encoding.Latin1.GetBytes($"0\r\n{trailerSection}\r\n"), cancellationToken);
        }, cancellationToken);

        using var reader = new Http1Reader(stream);
        var status = await reader.ReadLineAsync(8192, cancellationToken) ?? throw new IOException("no answer");
        var answerFields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        while (await reader.ReadLineAsync(8192, cancellationToken) is { Length: > 0 } line)
        {
            var (name, value) = FieldSyntax.ParseLine(line) ?? throw new InvalidDataException($"not a field line: {line}");
            answerFields[name] = value;
        }
        var content = new MemoryStream();
        if (answerFields.TryGetValue("Transfer-Encoding", out var coding) && coding == "chunked")
        {
            await new ChunkedReadStream(reader).CopyToAsync(content, cancellationToken);
        }
        else
        {
            var remaining = long.Parse(answerFields["Content-Length"], System.Globalization.CultureInfo.InvariantCulture);
            var buffer = new byte[64 * 1024];
            while (remaining > 0)
            {
                var n = await reader.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, remaining)), cancellationToken);
                if (n == 0)
                {
                    throw new IOException("the answer was cut off");
                }
                content.Write(buffer, 0, n);
                remaining -= n;
            }
        }
        await sending;
        return new Answer(int.Parse(status.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture), answerFields, content.ToArray());
    }

    /// <summary>Sends <paramref name="request"/> (Latin-1) on a new connection to <paramref name="port"/>; returns the answer's head, or all of it.</summary>
    public static async Task<string> SendHeadAsync(int port, string request, bool readToEnd = false)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        using var cts = new CancellationTokenSource(Infrastructure.Timeouts.Default);
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
        await socket.SendAsync(Encoding.Latin1.GetBytes(request), cts.Token);
        var answer = new StringBuilder();
        var buffer = new byte[8192];
        int n;
        while ((readToEnd || !answer.ToString().Contains("\r\n\r\n", StringComparison.Ordinal)) && (n = await socket.ReceiveAsync(buffer, cts.Token)) > 0)
        {
            answer.Append(Encoding.Latin1.GetString(buffer, 0, n));
        }
        return answer.ToString();
    }
}
