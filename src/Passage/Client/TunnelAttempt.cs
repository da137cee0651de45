namespace Passage.Client;

/// <summary>The outcome of one attempt at one relay: a tunnel stream, or why not.</summary>
internal readonly record struct TunnelAttempt(Stream? Stream, TunnelFailure Failure, string Detail)
{
    public static TunnelAttempt Failed(TunnelFailure failure, string detail) => new(null, failure, detail);

    /// <summary>A relay that took the tunnel request and did not answer within <paramref name="answerTimeout"/>: the relay's failure.</summary>
    public static TunnelAttempt NoAnswer(Identity.PeerAddress relay, TimeSpan answerTimeout) =>
        Failed(TunnelFailure.RelayUnavailable, $"relay {relay.Host}:{relay.Port} did not answer within {Configuration.Duration.Format(answerTimeout)}");
}
