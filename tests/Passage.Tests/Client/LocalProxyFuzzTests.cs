using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using Passage.Client;
using Passage.Client.Socks5;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;
using static Passage.Client.Socks5.Socks5Protocol;

namespace Passage.Tests.Client;

/// <summary>
/// A bounded, seeded sample of mutated conversations sent to a real local proxy (SOCKS5 and HTTP) in front of a real
/// relay: each connection gets the answer its bytes call for, or a close when they call for none, never a hang nor a
/// fault in the proxy, and the proxy serves a valid request afterwards.
/// </summary>
public sealed class LocalProxyFuzzTests
{
    private const int Seed = 20_261_209;
    private const int Samples = 200;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(240);

    [Fact]
    public async Task Mutated_socks5_conversations_each_get_their_answer_and_the_proxy_serves_on()
    {
        await using var path = await ProxyPath.StartAsync();
        var port = path.ClosingPort;
        byte[][] corpus =
        [
            [Socks5Protocol.Version, 1, MethodNoAuth, Socks5Protocol.Version, CommandConnect, 0, AddressDomain, 11, .. "origin.test"u8, (byte)(port >> 8), (byte)port, .. "ping"u8],
            [Socks5Protocol.Version, 2, MethodUserPass, MethodNoAuth, Socks5Protocol.Version, CommandConnect, 0, AddressIPv4, 127, 0, 0, 1, (byte)(port >> 8), (byte)port],
            [Socks5Protocol.Version, 1, MethodNoAuth, Socks5Protocol.Version, CommandConnect, 0, AddressIPv6, .. IPAddress.IPv6Loopback.GetAddressBytes(), 1, 187],
            [Socks5Protocol.Version, 1, MethodNoAuth, Socks5Protocol.Version, 2, 0, AddressDomain, 1, (byte)'.', 0, 80],
        ];
        var answered = 0;
        await Task.Run(async () =>
        {
            var random = new Random(Seed);
            for (var i = 0; i < Samples; i++)
            {
                var sent = ByteMutations.Mutate(corpus[random.Next(corpus.Length)], random, Socks5ProtocolFuzzTests.Interesting);
                var context = $"seed {Seed}, sample {i}: {Convert.ToHexString(sent)}";
                var answer = await ExchangeAsync(path.Proxy.SocksEndpoints[0], sent, context);
                var expected = ExpectedSocksAnswer(sent);
                Assert.True(answer.AsSpan().StartsWith(expected) && (expected.Length > 0 || answer.Length == 0),
                    $"{context}: answered {Convert.ToHexString(answer)}, expected {Convert.ToHexString(expected)}");
                answered += answer.Length > 0 ? 1 : 0;
            }
        }).WaitAsync(Bound);

        Assert.InRange(answered, 1, Samples - 1);
        path.AssertNoFault();
        var echo = path.Echo.Port;
        await path.AssertServesAsync([Socks5Protocol.Version, 1, MethodNoAuth, Socks5Protocol.Version, CommandConnect, 0, AddressDomain, 11, .. "origin.test"u8, (byte)(echo >> 8), (byte)echo], true);
    }

    [Fact]
    public async Task Mutated_http_proxy_heads_each_get_their_answer_and_the_proxy_serves_on()
    {
        await using var path = await ProxyPath.StartAsync();
        var port = path.ClosingPort;
        string[] corpus =
        [
            $"CONNECT origin.test:{port} HTTP/1.1\r\nHost: origin.test:{port}\r\n\r\nping",
            $"CONNECT 127.0.0.1:{port} HTTP/1.0\r\nUser-Agent: fuzz\r\n\r\n",
            $"GET http://origin.test:{port}/path?q=1 HTTP/1.1\r\nHost: elsewhere\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nTE: trailers\r\n\r\n",
            $"POST http://origin.test:{port}/up HTTP/1.1\r\nContent-Length: 3\r\nProxy-Authorization: Bearer t\r\n\r\nabc",
            $"OPTIONS http://origin.test:{port} HTTP/1.1\r\nMax-Forwards: 0\r\n\r\n",
        ];
        var answered = 0;
        var total = 0;
        await Task.Run(async () =>
        {
            // The random sample, then the hosts at the edge of what a relay reads, which random edits seldom make.
            var random = new Random(Seed);
            var edges = ProxyRequestHeadFuzzTests.EdgeHostNames.SelectMany(h => new[]
            {
                $"CONNECT {h}:{port} HTTP/1.1\r\nHost: {h}:{port}\r\n\r\n", $"GET http://{h}:{port}/ HTTP/1.1\r\n\r\n",
            });
            var samples = Enumerable.Range(0, Samples)
                .Select(_ => ByteMutations.Mutate(Encoding.UTF8.GetBytes(corpus[random.Next(corpus.Length)]), random, ProxyRequestHeadFuzzTests.Interesting))
                .Concat(edges.Select(Encoding.ASCII.GetBytes))
                .ToList();
            total = samples.Count;
            foreach (var (sent, i) in samples.Select((s, i) => (s, i)))
            {
                var context = $"seed {Seed}, sample {i}: {Encoding.Latin1.GetString(sent).ReplaceLineEndings("|")}";
                var answer = Encoding.Latin1.GetString(await ExchangeAsync(path.Proxy.HttpEndpoints[0], sent, context));
                if (answer.Length == 0)
                {
                    // Only a head that never ended may go unanswered: the application left before asking.
                    Assert.True(Encoding.Latin1.GetString(sent).TrimStart('\r', '\n').IndexOf("\r\n\r\n", StringComparison.Ordinal) < 0, $"{context}: no answer");
                    continue;
                }
                answered++;
                Assert.Matches(@"^HTTP/1\.[01] [1-5]\d\d ", answer);
                if (!answer.StartsWith("HTTP/1.1 2", StringComparison.Ordinal))
                {
                    // The proxy's own refusals, and its answers for an origin that said nothing an application could read, say why.
                    Assert.Contains("\r\nProxy-Status: ", answer[..answer.IndexOf("\r\n\r\n", StringComparison.Ordinal)], StringComparison.Ordinal);
                }
            }
        }).WaitAsync(Bound);

        // Both ways were taken: heads answered, and heads that never ended.
        Assert.InRange(answered, 1, total - 1);
        path.AssertNoFault();
        await path.AssertServesAsync(Encoding.ASCII.GetBytes($"CONNECT origin.test:{path.Echo.Port} HTTP/1.1\r\nHost: origin.test:{path.Echo.Port}\r\n\r\n"), false);
    }

    /// <summary>
    /// What a SOCKS5 front door answers to <paramref name="sent"/>, all sent at once (no user list): the method selection
    /// once the greeting is whole, then the request's reply once it is whole (and its first bytes only: a tunnel's are the
    /// echo's); to another protocol what <see cref="Socks5Session.AnswerToAnotherProtocol"/> says; nothing to a fragment.
    /// </summary>
    private static byte[] ExpectedSocksAnswer(byte[] sent)
    {
        switch (ParseGreeting(new(sent), MethodNoAuth, out var offered, out var used))
        {
            case ParseStatus.Incomplete:
                return [];
            case ParseStatus.Invalid:
                return Socks5Session.AnswerToAnotherProtocol(sent[0]).ToArray();
        }
        if (!offered)
        {
            return [Socks5Protocol.Version, MethodNoneAcceptable];
        }
        return ParseRequest(new(sent.AsMemory(used)), out var host, out _, out _, out var error) switch
        {
            ParseStatus.Incomplete => [Socks5Protocol.Version, MethodNoAuth],
            ParseStatus.Invalid => [Socks5Protocol.Version, MethodNoAuth, .. ReplyBytes(error)],
            // The relay allows origin.test alone, and on two ports: the reply's code varies.
            _ => [Socks5Protocol.Version, MethodNoAuth, Socks5Protocol.Version],
        };
    }

    /// <summary>
    /// Sends <paramref name="sent"/> on a new connection to <paramref name="endpoint"/>, ends its sending half, and reads all that
    /// comes until the proxy closes (a reset too ends it, keeping what came before). The read is bounded: a hang fails the test.
    /// </summary>
    private static async Task<byte[]> ExchangeAsync(IPEndPoint endpoint, byte[] sent, string context)
    {
        using var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await app.ConnectAsync(endpoint).WaitAsync(Timeouts.Default);
        var received = new MemoryStream();
        try
        {
            await Loopback.SendAllAsync(app, sent);
            app.Shutdown(SocketShutdown.Send);
            using var cts = new CancellationTokenSource(Timeouts.Default);
            var buffer = new byte[4096];
            while (await app.ReceiveAsync(buffer, SocketFlags.None, cts.Token) is var n and > 0)
            {
                received.Write(buffer, 0, n);
            }
        }
        catch (SocketException)
        {
            // The proxy closed before reading all: what it answered first stands.
        }
        catch (OperationCanceledException e)
        {
            throw new TimeoutException($"{context}: neither an answer nor a close in {Timeouts.Default.TotalSeconds} s", e);
        }
        return received.ToArray();
    }

    /// <summary>
    /// A relay that allows origin.test alone (on loopback), on two ports: an origin that closes every connection at once, for
    /// the sample (a half-close from the application is not carried over the tunnel, so a tunnel ends as its destination
    /// does), and an echo server; it resolves no other name. The client, and its SOCKS5 and HTTP front doors, whose log is
    /// kept: a fault in a session is logged there.
    /// </summary>
    private sealed class ProxyPath : IAsyncDisposable
    {
        private readonly ConnectHarness _relay;
        private readonly PassageClient _client;
        private readonly RecordingLogger _log;
        private readonly Socket _closing;
        private readonly Task _closingLoop;

        private ProxyPath(ConnectHarness relay, PassageClient client, LocalProxy proxy, EchoServer echo, Socket closing, RecordingLogger log)
        {
            (_relay, _client, Proxy, Echo, _closing, _log) = (relay, client, proxy, echo, closing, log);
            _closingLoop = CloseEachAsync();
        }

        public LocalProxy Proxy { get; }

        public EchoServer Echo { get; }

        /// <summary>The port of the origin that closes every connection as soon as it has it.</summary>
        public int ClosingPort => ((IPEndPoint)_closing.LocalEndPoint!).Port;

        public static async Task<ProxyPath> StartAsync()
        {
            var echo = new EchoServer();
            var closing = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            closing.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            closing.Listen(64);
            var closingPort = ((IPEndPoint)closing.LocalEndPoint!).Port;
            var relay = await ConnectHarness.StartAsync(
                o => o with { Allow = [$"origin.test:{echo.Port}", $"origin.test:{closingPort}"] }, dns: (_, _) => Task.FromResult(Array.Empty<IPAddress>()));
            var client = new PassageClient(new PassageClientOptions { Relays = [new PeerAddress(relay.Relay.NodeId, "127.0.0.1", relay.TlsPort)] });
            await client.StartAsync().WaitAsync(Timeouts.Default);
            var log = new RecordingLogger();
            var loopback = new IPEndPoint(IPAddress.Loopback, 0);
            var proxy = LocalProxy.Start(client, new LocalProxyOptions { SocksEndpoints = [loopback], HttpEndpoints = [loopback] }, log.Factory(), new RelayMetrics());
            return new ProxyPath(relay, client, proxy, echo, closing, log);
        }

        /// <summary>No session ended in an exception the proxy had to catch for it.</summary>
        public void AssertNoFault() =>
            Assert.DoesNotContain(_log.Entries, e => e.Level >= LogLevel.Warning && e.Exception is not null);

        /// <summary>A valid request still opens a tunnel to the echo server, which echoes what goes through it.</summary>
        public async Task AssertServesAsync(byte[] request, bool socks)
        {
            using var app = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await app.ConnectAsync(socks ? Proxy.SocksEndpoints[0] : Proxy.HttpEndpoints[0]).WaitAsync(Timeouts.Default);
            await Loopback.SendAllAsync(app, request);
            byte[] expected = socks ? [Socks5Protocol.Version, MethodNoAuth, .. ReplyBytes(Reply.Succeeded)] : "HTTP/1.1 200 "u8.ToArray();
            Assert.Equal(expected, await Loopback.ReadToEndAsync(app, expected.Length));
            if (!socks)
            {
                await ReadPastHeadAsync(app);
            }
            await Loopback.SendAllAsync(app, "ping"u8.ToArray());
            Assert.Equal("ping"u8.ToArray(), await Loopback.ReadToEndAsync(app, 4));
        }

        private static async Task ReadPastHeadAsync(Socket app)
        {
            var head = new List<byte>();
            while (!head.AsEnumerable().Reverse().Take(4).SequenceEqual("\n\r\n\r"u8.ToArray()))
            {
                var next = await Loopback.ReadToEndAsync(app, 1);
                Assert.NotEmpty(next);
                head.AddRange(next);
            }
        }

        private async Task CloseEachAsync()
        {
            try
            {
                while (true)
                {
                    (await _closing.AcceptAsync()).Dispose();
                }
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                // Stopped.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Proxy.DisposeAsync();
            await _client.DisposeAsync();
            await _relay.DisposeAsync();
            await Echo.DisposeAsync();
            _closing.Dispose();
            await _closingLoop;
        }
    }
}
