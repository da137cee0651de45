namespace Passage.Client;

/// <summary>
/// Why the client could not open a tunnel. Relay-side failures and a relay's 407 are retried on the next relay; with
/// none left the most telling failure seen is reported: a destination's (it ends the search), else a 407, else the
/// last relay's.
/// </summary>
public enum TunnelFailure
{
    /// <summary>The relay could not be reached or its connection broke (retried on the next relay).</summary>
    RelayUnavailable,

    /// <summary>The relay presented a key other than its pinned node ID (retried on the next relay; never trusted).</summary>
    PinMismatch,

    /// <summary>The relay is at its tunnel limit or shutting down: 503 (retried on the next relay).</summary>
    RelayBusy,

    /// <summary>
    /// The relay wants credentials this client does not have or that it refused: 407. Retried on the next relay (relays
    /// may be run by different operators, or a token rotated at one), and this one stays up: it works, it refuses us.
    /// Reported when no relay opened the tunnel, one answered so, and none named a destination's failure.
    /// </summary>
    AuthenticationRequired,

    /// <summary>The relay's policy refuses the destination: 403 (<c>http_request_denied</c>, <c>destination_ip_prohibited</c>).</summary>
    DestinationDenied,

    /// <summary>The destination's name did not resolve at the relay (<c>dns_error</c>).</summary>
    DnsError,

    /// <summary>The destination refused the connection (<c>connection_refused</c>).</summary>
    ConnectionRefused,

    /// <summary>The destination could not be reached (<c>destination_ip_unroutable</c>).</summary>
    Unreachable,

    /// <summary>The destination did not answer in time (504, <c>connection_timeout</c>).</summary>
    Timeout,

    /// <summary>The relay answered 502 without naming the destination's failure (not retried: another relay would likely say the same).</summary>
    Other,

    /// <summary>
    /// The relay found the request malformed: 400 (<c>http_request_error</c>), e.g. a target that is not a host
    /// name. Another relay would say the same.
    /// </summary>
    InvalidRequest,

    /// <summary>
    /// The relay answered what says nothing of the destination: a redirect, a 404, a 500, a status line it could not
    /// read (retried on the next relay).
    /// </summary>
    RelayError,
}
