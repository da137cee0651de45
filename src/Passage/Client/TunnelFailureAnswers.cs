using Passage.Client.Socks5;
using Passage.Relay;

namespace Passage.Client;

/// <summary>How the local front doors tell an application that a tunnel could not be opened.</summary>
internal static class TunnelFailureAnswers
{
    /// <summary>The SOCKS5 reply code (RFC 1928 §6).</summary>
    public static Socks5Protocol.Reply Socks(this TunnelFailure failure) => failure switch
    {
        TunnelFailure.DestinationDenied => Socks5Protocol.Reply.NotAllowedByRuleset,
        TunnelFailure.DnsError => Socks5Protocol.Reply.HostUnreachable,
        TunnelFailure.ConnectionRefused => Socks5Protocol.Reply.ConnectionRefused,
        TunnelFailure.Unreachable => Socks5Protocol.Reply.NetworkUnreachable,
        TunnelFailure.Timeout => Socks5Protocol.Reply.TtlExpired,
        _ => Socks5Protocol.Reply.GeneralFailure,
    };

    /// <summary>
    /// The HTTP answer (status and Proxy-Status) of the local HTTP proxy. What the relay said of the destination
    /// is passed on; a relay that could not be used (down, or not the pinned key) is answered 503, as the tunnel's
    /// client end answers while its session is down, with an error type about the relay, never the destination.
    /// </summary>
    public static RefusalReason Http(this TunnelFailure failure) => failure switch
    {
        TunnelFailure.InvalidRequest => RefusalReason.MalformedRequest,
        TunnelFailure.DestinationDenied => RefusalReason.DestinationDenied,
        TunnelFailure.DnsError => RefusalReason.DnsError,
        TunnelFailure.ConnectionRefused => RefusalReason.UpstreamRefused,
        TunnelFailure.Unreachable => RefusalReason.UpstreamUnreachable,
        TunnelFailure.Timeout => RefusalReason.UpstreamTimeout,
        TunnelFailure.RelayBusy => RefusalReason.ConnectionLimit,
        TunnelFailure.RelayUnavailable => RefusalReason.RelayUnavailable,
        TunnelFailure.PinMismatch => RefusalReason.RelayKeyMismatch,
        // An answer the client cannot pass on: RelayError, Other, AuthenticationRequired.
        _ => RefusalReason.RelayError,
    };
}
