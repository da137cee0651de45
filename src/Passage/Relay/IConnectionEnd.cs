namespace Passage.Relay;

/// <summary>
/// Where a connection that outlives its handler's setup reports its end: the listener, which
/// counts it open (for the connection limit and the drain) until then, or a caller that waits for it.
/// </summary>
internal interface IConnectionEnd
{
    /// <summary>
    /// The connection <paramref name="id"/> has ended and everything it held is released. Called
    /// exactly once; never throws. <paramref name="fault"/> is an exception that escaped the
    /// connection's end (a bug), or null.
    /// </summary>
    void Ended(long id, Exception? fault);
}
