using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Relay;
using Passage.Relay.Auth;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// The credentials of an HTTP/2 request: Kestrel has made the <c>Proxy-Authorization</c> field a string before the relay
/// sees the request, which the relay cannot clear; the request lets go of it once checked, so that a tunnel does not keep
/// it reachable for its whole life. Also what no real client brings about at will: a request that reaches the handler
/// after its connection's idle clock ran out.
/// </summary>
public sealed class Http2ConnectHandlerCredentialsTests
{
    [Theory]
    [InlineData("Bearer tok-en", 403)]
    [InlineData("Bearer wrong", 407)]
    public async Task The_request_holds_no_proxy_authorization_once_it_is_checked(string credentials, int status)
    {
        using var relay = new Relay();
        var context = ExtendedConnectTo("127.0.0.1", 80);
        context.Request.Headers.ProxyAuthorization = credentials;

        await relay.Handler.HandleAsync(context);

        Assert.Equal(status, context.Response.StatusCode);
        Assert.False(context.Request.Headers.ContainsKey("Proxy-Authorization"));
    }

    [Fact]
    public async Task A_request_on_a_connection_whose_idle_clock_ran_out_is_reset_with_REFUSED_STREAM_not_answered()
    {
        // The clock runs out, and the connection is told to go away, while the request's HEADERS is already on its way
        // (Kestrel closes a connection without streams at once, so only that race brings one here). RFC 9113 §8.7: a
        // stream the server did not process is reset with REFUSED_STREAM, and the client may send it again on a new
        // connection (HttpClient does so by itself); a 503 ended the request.
        using var relay = new Relay();
        var clock = new ManualTimeProvider();
        using var idle = new Http2ConnectionIdle(new DefaultConnectionContext(), TimeSpan.FromMinutes(5), clock);
        clock.Advance(TimeSpan.FromMinutes(6));
        Assert.True(idle.Expired);
        var context = ExtendedConnectTo("127.0.0.1", 443);
        context.Request.Headers.ProxyAuthorization = "Bearer tok-en";
        context.Features.Set(idle);
        var reset = new RecordedReset();
        context.Features.Set<IHttpResetFeature>(reset);

        await relay.Handler.HandleAsync(context);

        Assert.Equal(0x7, reset.ErrorCode);
        Assert.False(context.Response.Headers.ContainsKey("Proxy-Status"));
        Assert.Equal(1, relay.Counts["passage.relay.connections.refused/proxy_shutting_down"]);
    }

    /// <summary>An extended CONNECT for <paramref name="host"/>:<paramref name="port"/>, as Kestrel would hand it over.</summary>
    private static DefaultHttpContext ExtendedConnectTo(string host, int port)
    {
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpExtendedConnectFeature>(new ExtendedConnect());
        context.Request.Method = HttpMethods.Connect;
        context.Request.Scheme = "https";
        context.Request.Headers.Host = "relay.test";
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = MasqueTcpPath.PathFor(host, port);
        return context;
    }

    /// <summary>
    /// The handler of a relay with one token (<c>tok-en</c>) that allows port 443 only: a request let through the
    /// credentials to another port is refused next, for its port (403), with no dial.
    /// </summary>
    private sealed class Relay : IDisposable
    {
        private readonly TemporaryDirectory _directory = new();
        private readonly TokenFile _tokens;
        private readonly RelayMetrics _metrics = new();

        public Relay()
        {
            var path = Path.Combine(_directory.Path, "tokens");
            File.WriteAllText(path, "tok-en\n");
            Assert.True(TokenFile.TryOpen(path, out var tokens, out var error), error);
            _tokens = tokens!;
            var errors = new List<string>();
            var opener = new TunnelOpener(
                DestinationRules.Parse(["*:443"], [], "allow", "deny", errors),
                new DestinationResolver(new AddressPolicy(allowPrivate: true, [])),
                new ProxyAuthenticator(_tokens),
                ClientIdPolicy.Parse([], "clientIds", errors),
                new TunnelLimiter(10, 10),
                new RelayLimits(),
                NullLogger.Instance,
                TimeProvider.System);
            Assert.Empty(errors);
            var options = new ConnectOptions { KeyFile = Path.Combine(_directory.Path, "relay.pem") };
            var tunnels = new TunnelPump(options, TimeSpan.FromSeconds(10), new RelayLimits().PumpOptions(TimeProvider.System), _metrics, NullLogger.Instance);
            Handler = new Http2ConnectHandler(opener, tunnels, NullLogger.Instance, _metrics, options.MaxRequestHeadBytes, TimeProvider.System);
            Counts = new MetricsRecorder(_metrics.Meter);
        }

        public Http2ConnectHandler Handler { get; }

        public MetricsRecorder Counts { get; }

        public void Dispose()
        {
            Counts.Dispose();
            _metrics.Dispose();
            _tokens.Dispose();
            _directory.Dispose();
        }
    }

    /// <summary>Kestrel's reset of a stream, as the handler asks for it.</summary>
    private sealed class RecordedReset : IHttpResetFeature
    {
        public int? ErrorCode { get; private set; }

        public void Reset(int errorCode) => ErrorCode = errorCode;
    }

    /// <summary>What Kestrel's feature tells of an extended CONNECT with <c>:protocol connect-tcp</c>; never accepted here.</summary>
    private sealed class ExtendedConnect : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => true;

        public string? Protocol => "connect-tcp";

        public ValueTask<Stream> AcceptAsync() => throw new InvalidOperationException("no tunnel is to start");
    }
}
