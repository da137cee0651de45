using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Telemetry;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>The <c>error</c> label of a refusal the other end made: bounded, whatever error type that end chose.</summary>
public sealed class TunnelRefusalLabelTests
{
    /// <summary>
    /// A server end that presents the pinned key but refuses every request itself, marking each refusal with the error type
    /// its path names: any token it likes. The client end counts each refused, and only a type RFC 9209 registers shows
    /// as itself; the rest are one series, <c>other</c>, however many the peer makes up.
    /// </summary>
    [Fact]
    public async Task A_refusal_the_peer_names_with_an_unregistered_error_type_is_counted_as_other()
    {
        using var directory = new TemporaryDirectory();
        using var stop = new CancellationTokenSource();
        await using var peer = await RefusingPeer.StartAsync(directory, holdSession: true, stop.Token);
        await using var client = await StartClientEndAsync(directory, peer);
        using var prometheus = new PrometheusText(client.Metrics.Meter);
        await client.FirstAttempt.WaitAsync(Timeouts.Default);
        Assert.True(client.Status.Phase == TunnelPhase.Up, client.Status.ToString());

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{client.LocalEndpoint.Port}") };
        foreach (var errorType in new[] { "made_up_by_the_peer_1", "made_up_by_the_peer_2", "connection_refused" })
        {
            using var answer = await http.GetAsync("/" + errorType).WaitAsync(Timeouts.Default);
            Assert.Equal(HttpStatusCode.BadGateway, answer.StatusCode);
        }

        // Counted once its answer is written, which may be just after the application has read it.
        var metrics = "";
        await Timeouts.WaitUntilAsync(
            () => (metrics = prometheus.Render()).Contains("passage_tunnel_requests_total{outcome=\"refused\",error=\"connection_refused\"} 1\n", StringComparison.Ordinal),
            () => metrics);
        Assert.Contains("passage_tunnel_requests_total{outcome=\"refused\",error=\"other\"} 2\n", metrics);
        Assert.DoesNotContain("made_up", metrics);
        await stop.CancelAsync();
    }

    /// <summary>
    /// A server end that answers the session request with another status than 200 is named with a type RFC 9209 registers,
    /// as every failure of this end's is: it had been <c>http_response_status_error</c>, which no registry knows, and its
    /// refusals would have been counted <c>other</c>.
    /// </summary>
    [Fact]
    public async Task A_session_request_answered_with_another_status_is_an_http_protocol_error_counted_as_itself()
    {
        using var directory = new TemporaryDirectory();
        await using var peer = await RefusingPeer.StartAsync(directory, holdSession: false, CancellationToken.None);
        await using var client = await StartClientEndAsync(directory, peer);
        using var prometheus = new PrometheusText(client.Metrics.Meter);
        await client.FirstAttempt.WaitAsync(Timeouts.Default);
        Assert.Equal("http_protocol_error", client.Status.ErrorType);

        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{client.LocalEndpoint.Port}") };
        using var answer = await http.GetAsync("/").WaitAsync(Timeouts.Default);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, answer.StatusCode);
        Assert.Contains("error=http_protocol_error", Assert.Single(answer.Headers.GetValues("Proxy-Status")));
        var metrics = "";
        await Timeouts.WaitUntilAsync(
            () => (metrics = prometheus.Render()).Contains("passage_tunnel_requests_total{outcome=\"refused\",error=\"http_protocol_error\"} 1\n", StringComparison.Ordinal),
            () => metrics);
    }

    /// <summary>A client end in this process, with a new identity in <paramref name="directory"/>, pinning <paramref name="peer"/>'s.</summary>
    private static Task<TunnelClient> StartClientEndAsync(TemporaryDirectory directory, RefusingPeer peer) =>
        TunnelClient.StartAsync(new TunnelOptions
        {
            Mode = TunnelMode.Client,
            Peer = peer.Identity.NodeId,
            KeyFile = Path.Combine(directory.Path, "client.key"),
            ConnectAddress = new HostPort("127.0.0.1", peer.Port),
            HttpBindAddress = new IPEndPoint(IPAddress.Loopback, 0),
        }, NullLoggerFactory.Instance);

    /// <summary>
    /// A server end of the test's own: TLS with a new identity in a directory, HTTP/2, taking any client certificate. With
    /// <c>holdSession</c> it holds the session request open until <c>stop</c>, else answers it 404; it answers every other
    /// request 502 with a Proxy-Status and the refusal mark naming the error type its path gives.
    /// </summary>
    private sealed class RefusingPeer(WebApplication app, NodeIdentity identity) : IAsyncDisposable
    {
        public NodeIdentity Identity => identity;

        public int Port => new Uri(app.Urls.Single()).Port;

        public static async Task<RefusingPeer> StartAsync(TemporaryDirectory directory, bool holdSession, CancellationToken stop)
        {
            var identity = NodeIdentity.LoadOrCreate(Path.Combine(directory.Path, "server.key"), null, out _);
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.Listen(IPAddress.Loopback, 0, listen =>
            {
                listen.Protocols = HttpProtocols.Http2;
                listen.UseHttps(new HttpsConnectionAdapterOptions
                {
                    ServerCertificate = identity.Certificate,
                    ClientCertificateMode = ClientCertificateMode.AllowCertificate,
                    ClientCertificateValidation = (_, _, _) => true,
                });
            }));
            var app = builder.Build();
            app.Run(async context =>
            {
                if (context.Request.Headers.ContainsKey(TunnelHeaders.Session))
                {
                    if (!holdSession)
                    {
                        context.Response.StatusCode = StatusCodes.Status404NotFound;
                        return;
                    }
                    await context.Response.StartAsync();
                    await context.Response.Body.FlushAsync();
                    using var held = CancellationTokenSource.CreateLinkedTokenSource(stop, context.RequestAborted);
                    await Task.Delay(Timeout.Infinite, held.Token).ContinueWith(_ => { }, TaskScheduler.Default);
                    return;
                }
                var errorType = context.Request.Path.Value!.TrimStart('/');
                context.Response.StatusCode = StatusCodes.Status502BadGateway;
                context.Response.Headers["Proxy-Status"] = $"peer; error={errorType}";
                context.Response.Headers[TunnelHeaders.Refused] = errorType;
            });
            await app.StartAsync().WaitAsync(Timeouts.Default);
            return new RefusingPeer(app, identity);
        }

        public async ValueTask DisposeAsync()
        {
            await app.DisposeAsync();
            identity.Dispose();
        }
    }
}
