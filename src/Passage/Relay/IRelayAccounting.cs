using Passage.Transport;

namespace Passage.Relay;

/// <summary>What a front door counts and logs when one of its relayed connections ends.</summary>
internal interface IRelayAccounting
{
    /// <summary>
    /// Counts and logs the end of the relayed connection <paramref name="id"/>; called once, before
    /// its connections are disposed. <paramref name="result"/> is null when the pump itself threw
    /// (a bug, reported as the connection's fault).
    /// </summary>
    void Relayed(long id, PumpResult? result);
}
