namespace Passage.Tunnel;

/// <summary>
/// Where the client end's session is:
/// <code>
///  Connecting ──first attempt ok──► Up ──lost──► Down ──attempt ok──► Up ...
///      └────first attempt failed──────────────►  Down ◄─attempt failed─┘ (retry every connectInterval)
///  any ──stop──► Stopped
/// </code>
/// </summary>
public enum TunnelPhase
{
    /// <summary>The first connection attempt has not ended.</summary>
    Connecting,

    /// <summary>The session is established; requests are carried.</summary>
    Up,

    /// <summary>No session; requests are answered 503 at once while attempts go on.</summary>
    Down,

    /// <summary>This end is stopping or stopped.</summary>
    Stopped,
}
