namespace Passage.Telemetry;

/// <summary>
/// Event ids of Passage's log lines, one range per area so that ids stay stable as code moves.
/// 1xx relay lifecycle, 2xx pass-through connections, 3xx CONNECT tunnels, 4xx the point-to-point
/// tunnel, 5xx the client. Next free: 132, 209, 304, 415, 417, 510.
/// </summary>
internal static class LogEvents
{
    public const int RelayListening = 100;
    public const int RelayDraining = 101;
    public const int RelayStopped = 102;
    public const int ConnectionLimitReached = 103;
    public const int RefusedAtLimit = 104;
    public const int StuckAtStop = 105;
    public const int AdminListening = 106;
    public const int CapsLowered = 107;
    public const int AcceptPaused = 108;
    public const int OwnResolver = 109;
    public const int SystemResolver = 110;
    public const int Splicing = 111;
    public const int SplicingDefaultPipes = 112;
    public const int SplicePipeQuotaReached = 113;
    public const int SplicePipesOutOfDescriptors = 114;
    public const int TokenFileReloaded = 115;
    public const int TokenFileEmpty = 116;
    public const int TokenFileUnusable = 117;
    public const int RapidResetLinesSkipped = 118;
    public const int RelayStoppedAtSignal = 119;
    public const int AdminAcceptPaused = 120;
    public const int TunnelWindowLowered = 121;
    public const int TunnelWindowsTooLarge = 122;
    public const int HostAddressesUnread = 123;
    public const int DescriptorHeadroomReached = 124;
    public const int CertificateNotWritten = 125;
    public const int MetricNameTaken = 126;
    public const int AdminBeyondLoopback = 127;
    public const int RelayNotifyFailed = 128;
    public const int ClientConnectionLimitReached = 129;
    public const int ClientConnectionLimitLinesSkipped = 130;
    public const int ClientConnectionLimitRefused = 131;

    public const int PassthroughAccepted = 200;
    public const int PassthroughRouted = 201;
    public const int PassthroughRefused = 202;
    public const int PassthroughClosed = 203;
    public const int UpstreamUnavailable = 204;
    public const int DestinationProhibited = 205;
    public const int ConnectionFault = 206;
    public const int UpstreamUnavailableSkipped = 207;
    public const int SecretFileExposed = 208;

    public const int TunnelRequested = 300;
    public const int TunnelRefused = 301;
    public const int TunnelClosed = 302;
    public const int ConnectRefused = 303;

    public const int TunnelListening = 400;
    public const int TunnelIdentity = 401;
    public const int TunnelSessionUp = 402;
    public const int TunnelSessionDown = 403;
    public const int TunnelPeerRefused = 404;
    public const int TunnelExchangeFailed = 405;
    public const int TunnelRequestFailed = 406;
    public const int TunnelStopping = 407;
    public const int TunnelStopped = 408;
    public const int TunnelNotifyFailed = 409;
    public const int TunnelUpgradeFailed = 410;
    public const int TunnelLinesSkipped = 411;
    public const int TunnelBackendTimedOut = 412;
    public const int TunnelAnswerRefused = 413;
    public const int RefusalLinesSkipped = 414;
    public const int TunnelLoopDetected = 416;

    public const int ClientRelayFailed = 500;
    public const int ClientRelayFailedDetail = 501;
    public const int ClientRelayDown = 502;
    public const int ClientRelayUp = 503;
    public const int ClientCapLowered = 504;
    public const int ClientRelayBrokeTunnel = 505;
    public const int ClientRelayStatus = 506;
    public const int TunnelStatusSubscriberFailed = 507;
    public const int ClientIdentity = 508;
}
