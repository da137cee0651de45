namespace Passage.Relay.Auth;

/// <summary>The answer of <see cref="ProxyAuthenticator.Check"/> for one request.</summary>
public enum AuthResult
{
    /// <summary>No token file is configured, or the request carries a token that is in it.</summary>
    Allowed,

    /// <summary>
    /// A token is required and the request has no <c>Proxy-Authorization</c> header: the first request
    /// of an ordinary client, which answers the 407 challenge with credentials.
    /// </summary>
    Missing,

    /// <summary>
    /// The header is malformed, uses another scheme, or carries a token that is not in the file. The
    /// caller answers 407 just as for <see cref="Missing"/>, and never says which of these it was.
    /// </summary>
    Invalid,
}
