namespace Passage.Transport;

/// <summary>
/// An end of a pump that can tell whether the end of stream a read of it just returned was in fact its connection's failure
/// (<see cref="TcpState"/>): the pump then ends the tunnel as failed rather than pass a clean end on. An end that wraps a
/// socket connection and reads straight from it passes the socket's answer on.
/// </summary>
internal interface IEndOfStreamCheck
{
    /// <summary>True when the end of stream just read was a reset (or another failure) whose error something else took.</summary>
    bool EndOfStreamWasFailure();
}
