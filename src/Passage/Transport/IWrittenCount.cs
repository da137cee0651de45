namespace Passage.Transport;

/// <summary>
/// An end of a pump that can tell how many bytes the kernel has taken from its writes, those of a write that then failed
/// included (<see cref="SocketConnection.Written"/>): the pump counts the part of a failed write that went out all the
/// same. An end that wraps a socket connection and writes straight to it passes the socket's count on.
/// </summary>
internal interface IWrittenCount
{
    /// <summary>Bytes the kernel has taken from this end's writes so far.</summary>
    long Written { get; }
}
