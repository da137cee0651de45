namespace Passage.Relay;

/// <summary>Limits and timeouts every relay front door applies. Each default is the documented one.</summary>
public sealed record RelayLimits
{
    /// <summary>Default for <see cref="MaxConnections"/>: 4096.</summary>
    public const int DefaultMaxConnections = 4096;

    /// <summary>
    /// Client connections open at once on each front-door listener (across its endpoints). One more is
    /// refused at once (closed with a reset) and counted. Lowered at startup when the open-file limit cannot
    /// hold it (<see cref="DescriptorBudget"/>). Default 4096.
    /// </summary>
    public int MaxConnections { get; init; } = DefaultMaxConnections;

    /// <summary>Default for <see cref="MaxConnectionsPerClient"/>: 512.</summary>
    public const int DefaultMaxConnectionsPerClient = 512;

    /// <summary>
    /// Client connections open at once on each front-door listener from one client (<see cref="ClientKey"/>: an IPv4
    /// address, an IPv6 /64), so that no one client takes every slot of <see cref="MaxConnections"/>. One more from it is
    /// refused at once (closed with a reset) and counted, without pausing the listener for others. Default 512.
    /// </summary>
    public int MaxConnectionsPerClient { get; init; } = DefaultMaxConnectionsPerClient;

    /// <summary>
    /// Time a client has for its TLS handshake: to send its whole ClientHello (pass-through) or to
    /// complete the handshake with the relay (CONNECT). Default 5 s.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How long to try reaching an upstream (all its addresses together). Default 10 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Close a relayed connection when no byte moved either way for this long, and an HTTP/2 CONNECT connection when it
    /// has carried no tunnel for as long. Default 5 min.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// Move bytes with splice(2) where both ends of a relayed connection are plain sockets (Linux);
    /// the pooled copy otherwise. Default true.
    /// </summary>
    public bool ZeroCopy { get; init; } = true;

    /// <summary>The pump settings these limits imply, adding the bytes delivered to <paramref name="tally"/> if given.</summary>
    internal Transport.PumpOptions PumpOptions(TimeProvider time, Transport.ByteTally? tally = null) =>
        new() { IdleTimeout = IdleTimeout, TimeProvider = time, ZeroCopy = ZeroCopy, Tally = tally };

    /// <summary>On shutdown, how long open connections may finish before they are closed. Default 30 s.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);
}
