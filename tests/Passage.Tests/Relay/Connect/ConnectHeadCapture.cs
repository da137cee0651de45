using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// Captures real CONNECT request heads: a listener on 127.0.0.1:0 posing as the proxy accepts one connection,
/// keeps bytes until the first empty line, then closes, which makes the client give up. Each source is captured
/// once per test run and shared. Every wait is bounded.
/// </summary>
internal static class ConnectHeadCapture
{
    public const string TargetHost = "origin.test";

    /// <summary>The Basic credential of <see cref="HeadSource.CurlWithCredentials"/>: base64 of <c>alice:s3cret</c>.</summary>
    public const string BasicCredential = "Basic YWxpY2U6czNjcmV0";

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private static readonly ConcurrentDictionary<HeadSource, Lazy<Task<CapturedHead>>> Cache = new();

    /// <summary>Every source, for theories.</summary>
    public static TheoryData<HeadSource> Sources => new(Enum.GetValues<HeadSource>());

    /// <summary>The (cached) capture of <paramref name="source"/>.</summary>
    public static Task<CapturedHead> GetAsync(HeadSource source) =>
        Cache.GetOrAdd(source, s => new Lazy<Task<CapturedHead>>(() => CaptureAsync(s))).Value;

    /// <summary>Every source's capture.</summary>
    public static async Task<CapturedHead[]> GetAllAsync() =>
        await Task.WhenAll(Enum.GetValues<HeadSource>().Select(GetAsync));

    private static async Task<CapturedHead> CaptureAsync(HeadSource source) => source switch
    {
        HeadSource.Curl => new(source, await CaptureAsync(Curl($"https://{TargetHost}/")), TargetHost, 443, null),
        HeadSource.CurlWithCredentials => new(source, await CaptureAsync(Curl($"https://{TargetHost}/", "--proxy-user", "alice:s3cret")), TargetHost, 443, BasicCredential),
        HeadSource.CurlIPv6 => new(source, await CaptureAsync(Curl("https://[::1]:8443/")), "::1", 8443, null),
        HeadSource.HttpClient => new(source, await CaptureAsync(HttpClientRequest($"https://{TargetHost}:8443/")), TargetHost, 8443, null),
        _ => throw new ArgumentOutOfRangeException(nameof(source)),
    };

    private static Task<byte[]> CaptureAsync(Func<int, CancellationToken, Task> client) =>
        FirstBytesCapture.CaptureAsync(client, ReadHeadAsync, Timeout);

    /// <summary>Reads up to and including the first CRLFCRLF. Deliberately naive and independent of the parser under test.</summary>
    private static async Task<byte[]> ReadHeadAsync(Socket socket, CancellationToken cancellationToken)
    {
        var head = new List<byte>();
        var one = new byte[1];
        while (head.Count < 4 || head[^4] != '\r' || head[^3] != '\n' || head[^2] != '\r' || head[^1] != '\n')
        {
            if (await socket.ReceiveAsync(one, SocketFlags.None, cancellationToken) == 0)
            {
                throw new EndOfStreamException("client closed before its request head was complete");
            }

            head.Add(one[0]);
            if (head.Count > 64 * 1024)
            {
                throw new InvalidOperationException("no request head in the first 64 KiB");
            }
        }

        return [.. head];
    }

    private static Func<int, CancellationToken, Task> Curl(string url, params string[] extra) =>
        async (port, cancellationToken) =>
        {
            var info = Passage.Tests.Infrastructure.Curl.StartInfo(null, ["--silent", "-p", "-x", $"http://127.0.0.1:{port}", "--max-time", "3", .. extra, url]);
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
        };

    private static Func<int, CancellationToken, Task> HttpClientRequest(string url) =>
        async (port, cancellationToken) =>
        {
            using var handler = new SocketsHttpHandler { Proxy = new WebProxy($"http://127.0.0.1:{port}"), UseProxy = true };
            using var client = new HttpClient(handler);
            using var response = await client.GetAsync(url, cancellationToken);
        };
}
