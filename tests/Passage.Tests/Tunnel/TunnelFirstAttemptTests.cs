using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// <see cref="TunnelSession.FirstAttempt"/> completes once the first attempt's outcome is the status: whoever waits for it
/// (the client end's READY=1 and its STATUS=, with <c>system.waitForFirstAttempt</c>) reads up or down, never connecting.
/// </summary>
public sealed class TunnelFirstAttemptTests
{
    [Fact]
    public async Task A_failed_first_attempt_is_the_status_before_the_first_attempt_is_over()
    {
        using var directory = new TemporaryDirectory();
        var key = Path.Combine(directory.Path, "client.key");
        using var identity = NodeIdentity.LoadOrCreate(key, null, out _);
        // A port nothing listens on: the attempt is refused.
        using var closed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        closed.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)closed.LocalEndPoint!).Port;
        var options = new TunnelOptions
        {
            Mode = TunnelMode.Client,
            Peer = identity.NodeId,
            KeyFile = key,
            ConnectAddress = new HostPort("127.0.0.1", port),
        };
        using var credentials = TunnelCredentials.Load(options);
        await using var session = new TunnelSession(options, credentials, NullLogger.Instance);
        bool? overAtDown = null;
        session.StatusChanged += status =>
        {
            if (status.Phase == TunnelPhase.Down && overAtDown is null)
            {
                overAtDown = session.FirstAttempt.IsCompleted;
            }
        };
        session.Start();

        await session.FirstAttempt.WaitAsync(Timeouts.Default);
        Assert.Equal(TunnelPhase.Down, session.Status.Phase);
        // The change to down was made (and raised) before the attempt was declared over, not after.
        Assert.False(overAtDown);
    }
}
