namespace Passage.Telemetry;

/// <summary>
/// Event ids of Passage's log lines, one range per area so that ids stay stable as code moves.
/// 1xx relay lifecycle, 2xx pass-through connections, 3xx CONNECT tunnels, 5xx client. Next free: 105, 207, 304, 510.
/// </summary>
internal static class LogEvents
{
    public const int RelayListening = 100;
    public const int RelayDraining = 101;
    public const int RelayStopped = 102;
    public const int ConnectionLimitReached = 103;
    public const int RefusedAtLimit = 104;

    public const int PassthroughAccepted = 200;
    public const int PassthroughRouted = 201;
    public const int PassthroughRefused = 202;
    public const int PassthroughClosed = 203;
    public const int UpstreamUnavailable = 204;
    public const int DestinationProhibited = 205;
    public const int ConnectionFault = 206;

    public const int TunnelRequested = 300;
    public const int TunnelRefused = 301;
    public const int TunnelClosed = 302;
    public const int ConnectRefused = 303;

    public const int ClientRelayFailed = 500;
    public const int ClientRelayFailedDetail = 501;
    public const int ClientRelayDown = 502;
    public const int ClientRelayUp = 503;
    public const int ClientListening = 504;
    public const int ClientFrontDoorRefused = 505;
    public const int ClientTunnelClosed = 506;
}
