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
/// it reachable for its whole life.
/// </summary>
public sealed class Http2ConnectHandlerCredentialsTests
{
    [Theory]
    [InlineData("Bearer tok-en", 403)]
    [InlineData("Bearer wrong", 407)]
    public async Task The_request_holds_no_proxy_authorization_once_it_is_checked(string credentials, int status)
    {
        using var directory = new TemporaryDirectory();
        var path = Path.Combine(directory.Path, "tokens");
        File.WriteAllText(path, "tok-en\n");
        Assert.True(TokenFile.TryOpen(path, out var tokens, out var error), error);
        using var _ = tokens;
        using var metrics = new RelayMetrics();
        var errors = new List<string>();
        // Port 443 only: a request let through the credentials is refused next, for its port (403), with no dial.
        var opener = new TunnelOpener(
            DestinationRules.Parse(["*:443"], [], "allow", "deny", errors),
            new DestinationResolver(new AddressPolicy(allowPrivate: true, [])),
            new ProxyAuthenticator(tokens),
            ClientIdPolicy.Parse([], "clientIds", errors),
            new TunnelLimiter(10, 10),
            new RelayLimits(),
            NullLogger.Instance,
            TimeProvider.System);
        Assert.Empty(errors);
        var options = new ConnectOptions { KeyFile = Path.Combine(directory.Path, "relay.pem") };
        var tunnels = new TunnelPump(options, TimeSpan.FromSeconds(10), new RelayLimits().PumpOptions(TimeProvider.System), metrics, NullLogger.Instance);
        var handler = new Http2ConnectHandler(opener, tunnels, NullLogger.Instance, metrics, options.MaxRequestHeadBytes, TimeProvider.System);
        var context = new DefaultHttpContext();
        context.Features.Set<IHttpExtendedConnectFeature>(new ExtendedConnect());
        context.Request.Method = HttpMethods.Connect;
        context.Request.Scheme = "https";
        context.Request.Headers.Host = "relay.test";
        context.Features.Get<IHttpRequestFeature>()!.RawTarget = MasqueTcpPath.PathFor("127.0.0.1", 80);
        context.Request.Headers.ProxyAuthorization = credentials;

        await handler.HandleAsync(context);

        Assert.Equal(status, context.Response.StatusCode);
        Assert.False(context.Request.Headers.ContainsKey("Proxy-Authorization"));
    }

    /// <summary>What Kestrel's feature tells of an extended CONNECT with <c>:protocol connect-tcp</c>; never accepted here.</summary>
    private sealed class ExtendedConnect : IHttpExtendedConnectFeature
    {
        public bool IsExtendedConnect => true;

        public string? Protocol => "connect-tcp";

        public ValueTask<Stream> AcceptAsync() => throw new InvalidOperationException("no tunnel is to start");
    }
}
