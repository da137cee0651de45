using System.Net;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Relay;

/// <summary>A front door's listener takes its address and port alone.</summary>
public sealed class FrontDoorBindTests
{
    /// <summary>
    /// A second relay on an address and port a running one listens on fails to start, naming the front door and the
    /// endpoint. .NET's ReuseAddress, which the listeners used so that a restart is not refused for connections in
    /// TIME_WAIT, sets SO_REUSEPORT too on Linux: the second relay started, and the kernel split the first one's clients
    /// between the two.
    /// </summary>
    [Fact]
    public async Task A_second_relay_on_a_port_a_running_one_listens_on_fails_to_start()
    {
        await using var first = await ConnectHarness.StartAsync();
        var taken = new IPEndPoint(IPAddress.Loopback, first.TlsPort);

        var error = await Assert.ThrowsAsync<IOException>(() => ConnectHarness.StartAsync(o => o with { Endpoints = [taken] }));

        Assert.StartsWith($"connect cannot listen on {taken}: ", error.Message);
    }
}
