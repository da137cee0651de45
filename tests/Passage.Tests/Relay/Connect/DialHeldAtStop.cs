using System.Net;
using System.Net.Sockets;
using Passage.Relay;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>
/// A relay whose stop begins while a request's dial is under way: the dial waits on a DNS answer the test gives after
/// the stop began, to a destination the test listens on. The drain is long, so that nothing but the relay's own answer
/// ends the request.
/// </summary>
internal sealed class DialHeldAtStop : IAsyncDisposable
{
    private readonly HeldDns _dns;
    private readonly Socket _destination;
    private Socket? _dialed;

    private DialHeldAtStop(ConnectHarness relay, HeldDns dns, Socket destination)
    {
        Relay = relay;
        _dns = dns;
        _destination = destination;
    }

    public ConnectHarness Relay { get; }

    /// <summary>The destination's port; its name is <c>slow.test</c>.</summary>
    public int DestinationPort => ((IPEndPoint)_destination.LocalEndPoint!).Port;

    public static async Task<DialHeldAtStop> StartAsync()
    {
        var dns = new HeldDns();
        var destination = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            destination.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            destination.Listen(1);
            var relay = await ConnectHarness.StartAsync(
                limits: new RelayLimits { DrainTimeout = TimeSpan.FromMinutes(5), ConnectTimeout = TimeSpan.FromHours(1) },
                dns: dns.LookupAsync);
            return new DialHeldAtStop(relay, dns, destination);
        }
        catch
        {
            destination.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Once the request's lookup is held, begins the stop, then answers the lookup and takes the relay's connection to
    /// the destination: returns the stop, still under way.
    /// </summary>
    public async Task<Task> StopWhileDialingAsync()
    {
        await _dns.Asked.WaitAsync(Timeouts.Default);
        var stopping = Relay.Relay.StopAsync();
        _dns.Answer(IPAddress.Loopback);
        _dialed = await _destination.AcceptAsync().WaitAsync(Timeouts.Default);
        return stopping;
    }

    /// <summary>
    /// The request got no tunnel: the relay closed its connection to the destination, gave its slot back and counted it
    /// refused <c>proxy_shutting_down</c>.
    /// </summary>
    public async Task AssertRefusedAsAShutdownAsync()
    {
        Assert.True(await Loopback.IsClosedByPeerAsync(_dialed!));
        Assert.Equal(0, Relay.Relay.OpenTunnels);
        Assert.Equal(1, Relay.Counter("passage.relay.connections.refused/proxy_shutting_down"));
        Assert.Equal(0, Relay.Total("passage.relay.tunnels.opened"));
    }

    public async ValueTask DisposeAsync()
    {
        await Relay.DisposeAsync();
        _dialed?.Dispose();
        _destination.Dispose();
    }
}
