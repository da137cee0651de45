namespace Passage.Tunnel;

/// <summary>The client end's session state and, when not up, the most recent failure.</summary>
/// <param name="Phase">Where the session is.</param>
/// <param name="ErrorType">With <see cref="TunnelPhase.Down"/>: the RFC 9209 error type of the last failure.</param>
/// <param name="Details">With <see cref="TunnelPhase.Down"/>: what failed.</param>
public sealed record TunnelStatus(TunnelPhase Phase, string? ErrorType = null, string? Details = null)
{
    /// <summary>One line for systemd's STATUS= and for people.</summary>
    public override string ToString() => Phase switch
    {
        TunnelPhase.Up => "tunnel up",
        TunnelPhase.Connecting => "tunnel connecting",
        TunnelPhase.Down => $"tunnel down: {ErrorType}: {Details}",
        _ => "tunnel stopping",
    };
}
