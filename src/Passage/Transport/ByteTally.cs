namespace Passage.Transport;

/// <summary>
/// Bytes delivered each way by every pump run that reports here (<see cref="PumpOptions.Tally"/>), added as each write to
/// the other side completes: a long-lived connection's bytes show while it lasts, not only once it has ended, and a
/// connection that fails has counted exactly what it delivered.
/// </summary>
/// <remarks>One atomic add per write (a splice of up to a pipe's size, or a copy of up to a buffer's): nothing per byte.</remarks>
public sealed class ByteTally
{
    private long _toUpstream;
    private long _toClient;

    /// <summary>Bytes delivered to upstream ends so far.</summary>
    public long ToUpstream => Volatile.Read(ref _toUpstream);

    /// <summary>Bytes delivered to client ends so far.</summary>
    public long ToClient => Volatile.Read(ref _toClient);

    /// <summary>Counts <paramref name="count"/> bytes written to <paramref name="toSide"/>.</summary>
    internal void Add(PumpSide toSide, long count)
    {
        if (toSide == PumpSide.Upstream)
        {
            Interlocked.Add(ref _toUpstream, count);
        }
        else
        {
            Interlocked.Add(ref _toClient, count);
        }
    }
}
