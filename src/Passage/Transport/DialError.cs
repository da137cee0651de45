namespace Passage.Transport;

/// <summary>Why <see cref="TcpDialer"/> could not connect.</summary>
public enum DialError
{
    /// <summary>Connected.</summary>
    None,

    /// <summary>Every address actively refused the connection (RST): nothing listens there.</summary>
    Refused,

    /// <summary>The connect timeout passed before any address answered.</summary>
    TimedOut,

    /// <summary>No route to any address (host or network unreachable).</summary>
    Unreachable,

    /// <summary>Another socket error; see the result's socket error.</summary>
    Other,
}
