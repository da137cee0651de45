using System.Net;
using Passage.Configuration;

namespace Passage.Relay.Passthrough;

/// <summary>The pass-through (SNI-routing, TLS-blind) front door.</summary>
public sealed record PassthroughOptions
{
    /// <summary>Default for <see cref="MaxClientHelloBytes"/>: 16 KiB, several times any real ClientHello.</summary>
    public const int DefaultMaxClientHelloBytes = 16 * 1024;

    /// <summary>Addresses to listen on. Port 0 asks the OS for a free port.</summary>
    public IReadOnlyList<IPEndPoint> Endpoints { get; init; } = Array.Empty<IPEndPoint>();

    /// <summary>Routes by server name. Ignored when <see cref="Upstream"/> is set.</summary>
    public IReadOnlyList<SniRoute> Routes { get; init; } = Array.Empty<SniRoute>();

    /// <summary>One fixed upstream for every connection, whatever its server name (or none). Default none.</summary>
    public HostPort? Upstream { get; init; }

    /// <summary>Largest ClientHello accepted, in bytes of handshake message. Default 16 KiB.</summary>
    public int MaxClientHelloBytes { get; init; } = DefaultMaxClientHelloBytes;
}
