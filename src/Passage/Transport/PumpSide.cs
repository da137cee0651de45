namespace Passage.Transport;

/// <summary>One of the two ends a <see cref="BytePump"/> joins.</summary>
public enum PumpSide
{
    /// <summary>Neither side: used when nothing failed.</summary>
    None,

    /// <summary>The end that came to the relay (the accepted connection).</summary>
    Client,

    /// <summary>The end the relay dialed (the destination, or the next hop).</summary>
    Upstream,
}
