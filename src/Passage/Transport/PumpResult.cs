using System.Net.Sockets;

namespace Passage.Transport;

/// <summary>What a <see cref="BytePump"/> run did and why it stopped.</summary>
/// <param name="End">Why the run ended.</param>
/// <param name="FailedSide">The side whose read or write failed, when <paramref name="End"/> is <see cref="PumpEnd.Failed"/>.</param>
/// <param name="ClientToUpstreamBytes">Bytes delivered to the upstream (written successfully), the preamble included.</param>
/// <param name="UpstreamToClientBytes">Bytes delivered to the client (written successfully).</param>
/// <param name="SocketError">The socket error behind a failure, or <see cref="SocketError.Success"/> when none is known.</param>
/// <param name="Error">The exception behind a failure, for diagnostics only.</param>
public readonly record struct PumpResult(
    PumpEnd End,
    PumpSide FailedSide,
    long ClientToUpstreamBytes,
    long UpstreamToClientBytes,
    SocketError SocketError = SocketError.Success,
    Exception? Error = null)
{
    /// <summary>Total bytes delivered both ways.</summary>
    public long TotalBytes => ClientToUpstreamBytes + UpstreamToClientBytes;

    /// <summary>How the client-to-upstream direction moved its bytes (for tests and diagnostics).</summary>
    internal PumpPath ClientToUpstreamPath { get; init; }

    /// <summary>How the upstream-to-client direction moved its bytes (for tests and diagnostics).</summary>
    internal PumpPath UpstreamToClientPath { get; init; }
}
