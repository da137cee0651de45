using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;

using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Passthrough;

/// <summary>
/// Captures real ClientHellos: a listener on 127.0.0.1:0 accepts one connection, keeps the bytes of the
/// handshake records until one handshake message is whole, then closes, which aborts the client's handshake.
/// Each source is captured once per test run and shared. Every wait is bounded.
/// </summary>
internal static class ClientHelloCapture
{
    public const string TargetHost = "origin.test";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<HelloSource, Lazy<Task<CapturedHello>>> Cache = new();

    /// <summary>Every source, for theories.</summary>
    public static TheoryData<HelloSource> Sources => new(Enum.GetValues<HelloSource>());

    /// <summary>The (cached) capture of <paramref name="source"/>.</summary>
    public static Task<CapturedHello> GetAsync(HelloSource source) =>
        Cache.GetOrAdd(source, s => new Lazy<Task<CapturedHello>>(() => CaptureAsync(s))).Value;

    /// <summary>Every source's capture.</summary>
    public static async Task<CapturedHello[]> GetAllAsync() =>
        await Task.WhenAll(Enum.GetValues<HelloSource>().Select(GetAsync));

    private static async Task<CapturedHello> CaptureAsync(HelloSource source)
    {
        string[] h2AndHttp11 = ["h2", "http/1.1"];
        return source switch
        {
            HelloSource.SslStreamDefault => new(source, await CaptureAsync(SslStreamClient(TargetHost, SslProtocols.None, h2AndHttp11)), TargetHost, h2AndHttp11),
            HelloSource.SslStreamTls12 => new(source, await CaptureAsync(SslStreamClient(TargetHost, SslProtocols.Tls12, [])), TargetHost, []),
            HelloSource.SslStreamTls13 => new(source, await CaptureAsync(SslStreamClient(TargetHost, SslProtocols.Tls13, [])), TargetHost, []),
            HelloSource.SslStreamIpTarget => new(source, await CaptureAsync(SslStreamClient("127.0.0.1", SslProtocols.None, [])), null, []),
            HelloSource.Curl => new(source, await CaptureAsync(CurlClient), TargetHost, h2AndHttp11),
            _ => throw new ArgumentOutOfRangeException(nameof(source)),
        };
    }

    /// <summary>Runs <paramref name="client"/> against a one-shot listener and returns the hello records it sent.</summary>
    public static Task<byte[]> CaptureAsync(Func<int, CancellationToken, Task> client) =>
        FirstBytesCapture.CaptureAsync(client, ReadHelloRecordsAsync, Timeout);

    /// <summary>
    /// Reads whole records until the handshake message that starts in the first one is complete. Deliberately
    /// naive and independent of the parser under test.
    /// </summary>
    private static async Task<byte[]> ReadHelloRecordsAsync(Socket socket, CancellationToken cancellationToken)
    {
        var records = new List<byte>();
        var handshake = new List<byte>();
        var header = new byte[5];
        while (handshake.Count < 4 || handshake.Count < 4 + ((handshake[1] << 16) | (handshake[2] << 8) | handshake[3]))
        {
            await ReadExactlyAsync(socket, header, cancellationToken);
            var fragment = new byte[(header[3] << 8) | header[4]];
            await ReadExactlyAsync(socket, fragment, cancellationToken);
            records.AddRange(header);
            records.AddRange(fragment);
            handshake.AddRange(fragment);
            if (records.Count > 1 << 20)
            {
                throw new InvalidOperationException("no ClientHello in the first megabyte");
            }
        }

        return [.. records];
    }

    private static async Task ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            int read = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            if (read == 0)
            {
                throw new EndOfStreamException("client closed before its ClientHello was complete");
            }

            buffer = buffer[read..];
        }
    }

    private static Func<int, CancellationToken, Task> SslStreamClient(string targetHost, SslProtocols protocols, string[] alpn) =>
        async (port, cancellationToken) =>
        {
            using var tcp = new TcpClient();
            await tcp.ConnectAsync(IPAddress.Loopback, port, cancellationToken);
            await using var ssl = new SslStream(tcp.GetStream());
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = targetHost,
                EnabledSslProtocols = protocols,
                ApplicationProtocols = alpn.Select(p => new SslApplicationProtocol(p)).ToList(),
            };
            await ssl.AuthenticateAsClientAsync(options, cancellationToken);
        };

    private static async Task CurlClient(int port, CancellationToken cancellationToken)
    {
        var info = Curl.StartInfo(null, ["--silent", "--max-time", "3", "-k", "--connect-to", $"{TargetHost}:443:127.0.0.1:{port}", $"https://{TargetHost}/"]);
        using var process = Process.Start(info) ?? throw new InvalidOperationException("curl did not start");
        var drain = Task.WhenAll(process.StandardOutput.ReadToEndAsync(cancellationToken), process.StandardError.ReadToEndAsync(cancellationToken));
        try
        {
            await process.WaitForExitAsync(cancellationToken);
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill();
            }
        }

        await drain;
    }
}
