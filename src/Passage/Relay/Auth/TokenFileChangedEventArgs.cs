namespace Passage.Relay.Auth;

/// <summary>What a re-read of a <see cref="TokenFile"/> found; for the caller to log. Never holds a token.</summary>
public sealed class TokenFileChangedEventArgs : EventArgs
{
    /// <summary>Creates the event data.</summary>
    /// <param name="error">Why the file could not be used, or <see langword="null"/> when it was loaded.</param>
    /// <param name="tokenCount">The number of tokens in force after the re-read.</param>
    public TokenFileChangedEventArgs(string? error, int tokenCount)
        : this(error, tokenCount, null)
    {
    }

    internal TokenFileChangedEventArgs(string? error, int tokenCount, string? exposure)
    {
        Error = error;
        TokenCount = tokenCount;
        Exposure = exposure;
    }

    /// <summary>Whether the new content is in force.</summary>
    public bool Succeeded => Error is null;

    /// <summary>
    /// Why the file could not be used (unreadable, missing, a bad line); the tokens loaded last stay in
    /// force. <see langword="null"/> on success.
    /// </summary>
    public string? Error { get; }

    /// <summary>The number of tokens in force after the re-read.</summary>
    public int TokenCount { get; }

    /// <summary>
    /// When the re-read found the file open to others in a way not reported before (a change of mode is a re-read too),
    /// why, in the words of the start's warning (<c>'tokens' is readable by anyone on this machine (mode 0644); ...</c>);
    /// else <see langword="null"/>.
    /// </summary>
    public string? Exposure { get; }
}
