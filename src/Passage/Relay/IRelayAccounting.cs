using Passage.Transport;

namespace Passage.Relay;

/// <summary>What a front door counts and logs when one of its relayed connections ends.</summary>
internal interface IRelayAccounting
{
    /// <summary>
    /// Counts and logs the end of the relayed connection <paramref name="id"/>; called once, before
    /// its connections are disposed. When the pump itself threw (a bug, reported as the connection's fault),
    /// <paramref name="result"/> is a failure with no bytes counted, so that the connection is still counted
    /// closed once.
    /// </summary>
    void Relayed(long id, PumpResult result);
}
