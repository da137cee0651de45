namespace Passage.Client;

/// <summary>The outcome of one attempt at one relay: a tunnel stream, or why not.</summary>
/// <remarks><see cref="RelayDetails"/>: the <c>details</c> of the Proxy-Status a relay refused with, if it gave one.
/// <see cref="Hint"/>: what a relay's failure may mean, naming no destination (it is logged where the detail is not), or
/// null.</remarks>
internal readonly record struct TunnelAttempt(Stream? Stream, TunnelFailure Failure, string Detail, string? RelayDetails = null, string? Hint = null)
{
    public static TunnelAttempt Failed(TunnelFailure failure, string detail, string? hint = null) => new(null, failure, detail, Hint: hint);

    /// <summary>A relay's answer other than one that opens the tunnel: its status and its Proxy-Status, if any.</summary>
    public static TunnelAttempt Refused(int status, string? proxyStatus) =>
        new(null, TunnelFailures.FromAnswer(status, proxyStatus), $"{status} {proxyStatus}".Trim(), TunnelFailures.DetailsOf(proxyStatus));

    /// <summary>A relay that took the tunnel request and did not answer within <paramref name="answerTimeout"/>: the relay's failure.</summary>
    public static TunnelAttempt NoAnswer(Identity.PeerAddress relay, TimeSpan answerTimeout) =>
        Failed(TunnelFailure.RelayUnavailable, $"relay {relay.Host}:{relay.Port} did not answer within {Configuration.Duration.Format(answerTimeout)}");
}
