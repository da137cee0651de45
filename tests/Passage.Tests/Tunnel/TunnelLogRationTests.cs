using Passage.Tests.Infrastructure;
using Passage.Tunnel;

namespace Passage.Tests.Tunnel;

/// <summary>
/// Warnings that others can cause at will (a peer presenting a certificate of its own making, an application sending
/// requests that fail), and "tunnel down", written per change of a cause that may keep changing, are rationed per end:
/// ten every ten seconds, the rest counted in a line before the next.
/// </summary>
public sealed class TunnelLogRationTests
{
    [Fact]
    public void Each_kind_of_rationed_warning_is_written_ten_times_in_a_burst_and_the_kinds_are_rationed_apart()
    {
        var log = new RecordingLogger();
        for (var i = 0; i < 25; i++)
        {
            TunnelLog.PeerRefusedRationed(log, $"a certificate for attacker{i}.example", "the pinned ID");
            TunnelLog.ExchangeFailedRationed(log, "connection_refused", "backend down");
            TunnelLog.SessionDownRationed(log, i % 2 == 0 ? "connection_refused" : "connection_terminated", "a cause that keeps changing", "300ms");
        }
        Assert.Equal(TunnelLog.RationPerWindow, log.Entries.Count(e => e.Name == "TunnelPeerRefused"));
        Assert.Equal(TunnelLog.RationPerWindow, log.Entries.Count(e => e.Name == "TunnelExchangeFailed"));
        Assert.Equal(TunnelLog.RationPerWindow, log.Entries.Count(e => e.Name == "TunnelSessionDown"));
        Assert.DoesNotContain(log.Entries, e => e.Message.Contains("attacker10.example", StringComparison.Ordinal));

        // Another end (another logger) has a ration of its own.
        var other = new RecordingLogger();
        TunnelLog.ExchangeFailedRationed(other, "connection_refused", "backend down");
        Assert.Single(other.Entries);
    }
}
