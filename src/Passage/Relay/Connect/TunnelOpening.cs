using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>The outcome of <see cref="TunnelOpener.OpenAsync"/>: a connected upstream and its slot, or why not.</summary>
/// <param name="Upstream">The connected upstream (the caller owns it), or null when refused.</param>
/// <param name="Lease">The tunnel slot; the caller disposes it when the tunnel ends.</param>
/// <param name="Refusal">Why there is no upstream (meaningless when <paramref name="Upstream"/> is set).</param>
/// <param name="Detail">A short text for the Proxy-Status details; never the client's own bytes.</param>
internal readonly record struct TunnelOpening(SocketConnection? Upstream, TunnelLimiter.Lease? Lease, RefusalReason Refusal, string Detail)
{
    public static TunnelOpening Refused(RefusalReason reason, string detail) => new(null, null, reason, detail);
}
