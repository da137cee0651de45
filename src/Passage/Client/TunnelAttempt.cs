namespace Passage.Client;

/// <summary>The outcome of one attempt at one relay: a tunnel stream, or why not.</summary>
internal readonly record struct TunnelAttempt(Stream? Stream, TunnelFailure Failure, string Detail)
{
    public static TunnelAttempt Failed(TunnelFailure failure, string detail) => new(null, failure, detail);
}
