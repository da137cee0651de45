namespace Passage.Client;

/// <summary>A tunnel could not be opened; <see cref="Failure"/> says why.</summary>
public sealed class PassageTunnelException : IOException
{
    /// <summary>Creates the exception.</summary>
    public PassageTunnelException(TunnelFailure failure, string message, Exception? inner = null)
        : base(message, inner) => Failure = failure;

    /// <summary>Why the tunnel could not be opened.</summary>
    public TunnelFailure Failure { get; }
}
