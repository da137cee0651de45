using System.Buffers;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text;

namespace Passage.Relay.Auth;

/// <summary>
/// Decides whether a CONNECT request may proceed, from its <c>Proxy-Authorization</c> header and the
/// token file. Safe to share between connections.
/// </summary>
/// <remarks>
/// The caller answers <see cref="AuthResult.Missing"/> and <see cref="AuthResult.Invalid"/> alike with
/// 407 and <c>Proxy-Authenticate: </c><see cref="Challenge"/> (RFC 9110 §15.5.8, §11.7.1), and never logs
/// the header.
/// </remarks>
public sealed class ProxyAuthenticator
{
    /// <summary>The <c>Proxy-Authenticate</c> value offering both schemes that <see cref="Check"/> accepts.</summary>
    public const string Challenge = "Bearer realm=\"passage\", Basic realm=\"passage\"";

    private readonly TokenFile? _tokens;

    /// <summary>Creates an authenticator.</summary>
    /// <param name="tokens">The valid tokens; <see langword="null"/> when no authentication is required.
    /// Not owned: the caller disposes it.</param>
    public ProxyAuthenticator(TokenFile? tokens) => _tokens = tokens;

    /// <summary>An authenticator that lets every request through.</summary>
    public static ProxyAuthenticator None { get; } = new(null);

    /// <summary>Whether requests must carry a token.</summary>
    public bool IsRequired => _tokens is not null;

    /// <summary>Checks one request's credentials.</summary>
    /// <param name="proxyAuthorizationHeader">The <c>Proxy-Authorization</c> field value, or
    /// <see langword="null"/> when the request has none.</param>
    /// <returns>Allowed, or why not.</returns>
    public AuthResult Check(string? proxyAuthorizationHeader) => CheckValue(proxyAuthorizationHeader.AsSpan());

    /// <summary>
    /// <see cref="Check(string?)"/> for a field value whose bytes are each a Latin-1 character (RFC 9110 §5.5), as the
    /// HTTP/1.1 door reads it, empty when the request has none: read through a buffer cleared after, never a string.
    /// </summary>
    internal AuthResult CheckLatin1(ReadOnlySpan<byte> proxyAuthorizationHeader)
    {
        if (_tokens is null)
        {
            return AuthResult.Allowed;
        }

        var text = ArrayPool<char>.Shared.Rent(proxyAuthorizationHeader.Length);
        try
        {
            return CheckValue(text.AsSpan(0, Encoding.Latin1.GetChars(proxyAuthorizationHeader, text)));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(MemoryMarshal.AsBytes(text.AsSpan()));
            ArrayPool<char>.Shared.Return(text);
        }
    }

    /// <summary>The check itself, on the field value's characters (none when the request has no such field).</summary>
    private AuthResult CheckValue(ReadOnlySpan<char> proxyAuthorizationHeader)
    {
        if (_tokens is null)
        {
            return AuthResult.Allowed;
        }

        if (proxyAuthorizationHeader.IsWhiteSpace())
        {
            return AuthResult.Missing;
        }

        Span<char> token = stackalloc char[ProxyCredentials.MaxTokenLength];
        try
        {
            return ProxyCredentials.TryReadToken(proxyAuthorizationHeader, token, out int length)
                && _tokens.IsValid(token[..length])
                ? AuthResult.Allowed
                : AuthResult.Invalid;
        }
        finally
        {
            token.Clear();
        }
    }
}
