namespace Passage.Transport;

/// <summary>Why a <see cref="BytePump"/> run ended.</summary>
public enum PumpEnd
{
    /// <summary>Both sides ended their sending side cleanly; every byte read was delivered.</summary>
    Completed,

    /// <summary>No byte moved in either direction for the idle timeout; both sides were closed.</summary>
    IdleTimeout,

    /// <summary>The caller's token was cancelled (shutdown, drain deadline); both sides were closed.</summary>
    Canceled,

    /// <summary>
    /// A read or write failed on the side named by <see cref="PumpResult.FailedSide"/> (reset,
    /// broken pipe, TLS error); the other side was closed at once.
    /// </summary>
    Failed,
}
