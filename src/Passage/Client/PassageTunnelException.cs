namespace Passage.Client;

/// <summary>A tunnel could not be opened; <see cref="Failure"/> says why.</summary>
public sealed class PassageTunnelException : IOException
{
    /// <summary>Creates the exception; <paramref name="details"/> is what the relay said of its refusal, if anything.</summary>
    public PassageTunnelException(TunnelFailure failure, string message, Exception? inner = null, string? details = null)
        : base(message, inner)
    {
        Failure = failure;
        Details = string.IsNullOrEmpty(details) ? failure.Describe() : details;
    }

    /// <summary>Why the tunnel could not be opened.</summary>
    public TunnelFailure Failure { get; }

    /// <summary>
    /// For a person: the <c>details</c> of the Proxy-Status the relay refused with (<c>destination not allowed by the
    /// relay's policy</c>, <c>HostNotFound</c>), or, when it gave none or did not answer, what <see cref="Failure"/> means.
    /// Names no relay, host or address.
    /// </summary>
    public string Details { get; }
}
