using System.Net;
using Passage.Configuration;
using Passage.Identity;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// Validated settings of one tunnel end, as read by <see cref="TunnelSettings"/>. Keys are the JSON keys
/// (<c>general.mode</c>, <c>transport.maxIdleTimeout</c>, ...); each property names its key and default.
/// </summary>
public sealed record TunnelOptions
{
    /// <summary>The default port of the tunnel between the peers (<c>general.bindAddress</c>, <c>general.connectAddress</c>).</summary>
    public const int DefaultTunnelPort = 20010;

    /// <summary><c>general.mode</c>: <c>client</c> or <c>server</c>. Required.</summary>
    public TunnelMode Mode { get; init; }

    /// <summary><c>general.peer</c>: the other end's node ID; it must present that key. Either this or <see cref="CaFile"/> with <see cref="PeerHostname"/>.</summary>
    public NodeId? Peer { get; init; }

    /// <summary><c>general.peerHostname</c>: with <c>tls.ca</c>, the name the other end's certificate must carry.</summary>
    public string? PeerHostname { get; init; }

    /// <summary><c>general.bindAddress</c> (server): where the tunnel listens. Default <c>[::]:20010</c>.</summary>
    public IPEndPoint BindAddress { get; init; } = new(IPAddress.IPv6Any, DefaultTunnelPort);

    /// <summary><c>general.connectAddress</c> (client): where the server end is, <c>host:port</c>. Required in client mode.</summary>
    public HostPort? ConnectAddress { get; init; }

    /// <summary><c>general.httpBindAddress</c> (client): where local HTTP/1.1 requests come in. Default <c>127.0.0.1:20080</c>.</summary>
    public IPEndPoint HttpBindAddress { get; init; } = new(IPAddress.Loopback, 20080);

    /// <summary><c>general.httpConnectAddress</c> (server): the backend, <c>host:port</c>, spoken to in plain HTTP/1.1. Required in server mode.</summary>
    public HostPort? HttpConnectAddress { get; init; }

    /// <summary>
    /// <c>general.adminBindAddress</c>: where <c>passage tunnel</c> serves <c>/metrics</c> and <c>/healthz</c> (an
    /// <see cref="Telemetry.AdminServer"/>; <see cref="TunnelClient"/> and <see cref="TunnelServer"/> do not start it). Default none.
    /// </summary>
    public IPEndPoint? AdminBindAddress { get; init; }

    /// <summary><c>tls.key</c>: this end's identity file (key and certificate; created on first start), or with <c>tls.cert</c> the key of that certificate. Required.</summary>
    public string KeyFile { get; init; } = "";

    /// <summary><c>tls.cert</c>: a PEM certificate for <c>tls.key</c>, e.g. issued by the CA in <c>tls.ca</c>; only the first in the file is used (and sent). Default none: <c>tls.key</c> is an identity file.</summary>
    public string? CertFile { get; init; }

    /// <summary><c>tls.ca</c>: PEM file with the root certificate of the CA that issued the other end's certificate, and any intermediate CA certificates in between; used with <c>general.peerHostname</c> instead of <c>general.peer</c>.</summary>
    public string? CaFile { get; init; }

    /// <summary><c>transport.protocol</c>: <c>auto</c> (default; HTTP/2), <c>h2</c>, or <c>h3</c> (only where QUIC is supported).</summary>
    public TunnelProtocol Protocol { get; init; } = TunnelProtocol.Http2;

    /// <summary>
    /// <c>transport.maxIdleTimeout</c>: a connection attempt that has not completed, or a session whose
    /// keep-alive ping went unanswered, is given up after this long. Default 10s.
    /// </summary>
    public TimeSpan MaxIdleTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary><c>transport.keepAliveInterval</c>: an HTTP/2 PING is sent after this long without a frame from the peer. Default 2s.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary><c>transport.maxConcurrentHttpStreams</c>: requests in flight at once over the session (server: SETTINGS_MAX_CONCURRENT_STREAMS). Default 1000.</summary>
    public int MaxConcurrentHttpStreams { get; init; } = 1000;

    /// <summary><c>transport.streamReceiveWindow</c>: HTTP/2 receive window of each request, bytes. Default 4 MiB.</summary>
    public int StreamReceiveWindow { get; init; } = 4 * 1024 * 1024;

    /// <summary><c>transport.receiveWindow</c>: HTTP/2 receive window of the whole connection, bytes (server side; the client's grows on its own). Default 16 MiB.</summary>
    public int ReceiveWindow { get; init; } = 16 * 1024 * 1024;

    /// <summary><c>transport.socketReceiveBufferSize</c>: SO_RCVBUF of the tunnel's socket, bytes. Default: the kernel's (auto-tuned).</summary>
    public int? SocketReceiveBufferSize { get; init; }

    /// <summary><c>transport.socketSendBufferSize</c>: SO_SNDBUF of the tunnel's socket, bytes. Default: the kernel's (auto-tuned).</summary>
    public int? SocketSendBufferSize { get; init; }

    /// <summary><c>transport.congestionAlgorithm</c>: TCP congestion control of the tunnel's socket (Linux TCP_CONGESTION, e.g. <c>bbr</c>). Default: the kernel's.</summary>
    public string? CongestionAlgorithm { get; init; }

    /// <summary><c>transport.compress</c>: compress the bodies this end sends across the link (Brotli, fastest level). Default false.</summary>
    public bool Compress { get; init; }

    /// <summary><c>system.connectInterval</c> (client): pause between connection attempts while the session is down. Default 1s.</summary>
    public TimeSpan ConnectInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary><c>system.tcpNoDelay</c>: TCP_NODELAY on the tunnel's socket. Default true.</summary>
    public bool TcpNoDelay { get; init; } = true;

    /// <summary><c>system.waitForFirstAttempt</c> (client): tell systemd READY only after the first connection attempt ended. Default true.</summary>
    public bool WaitForFirstAttempt { get; init; } = true;

    /// <summary><c>system.watchdogFactor</c>: with <c>WATCHDOG_USEC</c> set, ping systemd's watchdog every WATCHDOG_USEC × this (0 &lt; f &lt; 1). Default 0.5.</summary>
    public double WatchdogFactor { get; init; } = 0.5;

    /// <summary>
    /// <c>system.backendTimeout</c> (server): a request the backend keeps waiting this long without a byte moving (no
    /// answer, a body that stalls, a request body it does not take) is answered 504, or cut off if its answer had
    /// begun. A slow client never counts. Default 60s; 0 for none.
    /// </summary>
    public TimeSpan BackendTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// <c>system.idleTimeout</c>: an upgraded connection (a WebSocket) through which no byte moved either way for this
    /// long is closed, at both ends, as the relay closes an idle tunnel; a request body of which no byte came for this
    /// long is cut off (408); so is an answer of which the client end's application took no byte for this long. Default 5m;
    /// <see cref="Timeout.InfiniteTimeSpan"/> for none.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = PumpOptions.Default.IdleTimeout;

    /// <summary><c>system.addForwarded</c>: append an RFC 7239 <c>Forwarded</c> element (<c>for=</c> the address the request came from). Default false.</summary>
    public bool AddForwarded { get; init; }

    /// <summary><c>system.drainTimeout</c>: on the first SIGTERM, how long requests in flight may finish. Default 30s.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Server: the most backend connections open at once, pooled and upgraded; null (the default) for the share of the
    /// open-file limit left for them. Set only by tests; no key.
    /// </summary>
    internal int? BackendConnectionLimit { get; init; }
}
