using System.Buffers;
using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text.Unicode;

namespace Passage.Relay.Auth;

/// <summary>
/// Reads the token from a <c>Proxy-Authorization</c> header value (RFC 9110 §11.7.2) into a buffer the
/// caller owns and clears, so that the secret never lands in a string, a log or the heap.
/// </summary>
/// <remarks>
/// <para>Two schemes, named case-insensitively (RFC 9110 §11.1):</para>
/// <list type="bullet">
/// <item><c>Bearer TOKEN</c> (RFC 6750 §2.1): the token as sent.</item>
/// <item><c>Basic base64(user:password)</c> (RFC 7617 §2): the password is the token and the user is
/// ignored, so <c>curl --proxy-user any:TOKEN</c> works. The user-id ends at the first colon; the
/// password is UTF-8 (RFC 7617 §2.1).</item>
/// </list>
/// <para>The grammar is <c>credentials = auth-scheme 1*SP token68</c> (RFC 9110 §11.4), with optional
/// whitespace around the field value (RFC 9110 §5.5). Anything else (another scheme, auth-params, a
/// missing or empty token, bad base64, no colon in Basic) yields no token; the caller does not learn
/// which, and neither does the client.</para>
/// </remarks>
internal static class ProxyCredentials
{
    /// <summary>The longest token accepted, in characters; longer ones are malformed.</summary>
    public const int MaxTokenLength = 1024;

    /// <summary>
    /// The longest <c>user:password</c> of Basic read, in bytes: a generous user-id on top of the longest token. Longer
    /// ones are malformed.
    /// </summary>
    public const int MaxBasicDecodedLength = 2 * MaxTokenLength;

    private static readonly SearchValues<char> s_token68 =
        SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/");

    private static readonly SearchValues<char> s_tchar =
        SearchValues.Create("!#$%&'*+-.^_`|~ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");

    /// <summary>Extracts the token from a header value.</summary>
    /// <param name="headerValue">The <c>Proxy-Authorization</c> field value.</param>
    /// <param name="token">Receives the token; at least <see cref="MaxTokenLength"/> long. The caller clears it.</param>
    /// <param name="length">The token's length in <paramref name="token"/>.</param>
    /// <returns>Whether the header carries a non-empty token of a known scheme.</returns>
    public static bool TryReadToken(ReadOnlySpan<char> headerValue, Span<char> token, out int length)
    {
        length = 0;
        if (!TrySplit(headerValue, out var scheme, out var credentials))
        {
            return false;
        }

        if (scheme.Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            if (credentials.Length > MaxTokenLength || credentials.Length > token.Length)
            {
                return false;
            }

            credentials.CopyTo(token);
            length = credentials.Length;
            return true;
        }

        return scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase) && TryReadBasicPassword(credentials, token, out length);
    }

    /// <summary>
    /// Reads the user-id and password of <c>Basic base64(user:password)</c> (RFC 7617 §2; the user-id ends at the first
    /// colon, both are UTF-8) into <paramref name="decoded"/>, where they lie: false for another scheme or anything
    /// malformed, the caller not told which. Neither becomes a string.
    /// </summary>
    /// <param name="headerValue">The <c>Proxy-Authorization</c> field value.</param>
    /// <param name="decoded">Receives the decoded credentials; at least <see cref="MaxBasicDecodedLength"/> long. The caller clears it.</param>
    /// <param name="user">Where the user-id lies in <paramref name="decoded"/>.</param>
    /// <param name="password">Where the password lies in <paramref name="decoded"/>.</param>
    public static bool TryReadBasic(ReadOnlySpan<char> headerValue, Span<byte> decoded, out Range user, out Range password)
    {
        (user, password) = (default, default);
        if (!TrySplit(headerValue, out var scheme, out var credentials) || !scheme.Equals("Basic", StringComparison.OrdinalIgnoreCase)
            || !TryDecodeBasic(credentials, decoded, out int length, out int colon)
            || !Utf8.IsValid(decoded[..colon]) || !Utf8.IsValid(decoded[(colon + 1)..length]))
        {
            return false;
        }

        (user, password) = (..colon, (colon + 1)..length);
        return true;
    }

    /// <summary>
    /// <c>credentials = auth-scheme 1*SP token68</c> (RFC 9110 §11.4), the field value's surrounding whitespace
    /// trimmed (RFC 9110 §5.5).
    /// </summary>
    private static bool TrySplit(ReadOnlySpan<char> headerValue, out ReadOnlySpan<char> scheme, out ReadOnlySpan<char> credentials)
    {
        ReadOnlySpan<char> value = headerValue.Trim(" \t");
        int space = value.IndexOf(' ');
        scheme = space <= 0 ? default : value[..space];
        credentials = space <= 0 ? default : value[space..].TrimStart(' ');
        return space > 0 && !scheme.ContainsAnyExcept(s_tchar) && IsToken68(credentials);
    }

    /// <summary>
    /// Whether <paramref name="token"/> is one a relay can take as a bearer token: token68 (RFC 9110 §11.2), at most
    /// <see cref="MaxTokenLength"/> characters. What a client sends is checked by it too, so that a token cannot carry
    /// line breaks or other fields into the request head it goes in.
    /// </summary>
    internal static bool IsBearerToken(ReadOnlySpan<char> token) => token.Length <= MaxTokenLength && IsToken68(token);

    // token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" (RFC 9110 §11.2).
    private static bool IsToken68(ReadOnlySpan<char> text)
    {
        ReadOnlySpan<char> body = text.TrimEnd('=');
        return !body.IsEmpty && !body.ContainsAnyExcept(s_token68);
    }

    /// <summary>
    /// Decodes <c>base64(user:password)</c> into <paramref name="decoded"/> (at least <see cref="MaxBasicDecodedLength"/>;
    /// the caller clears it): its length, and where the colon that ends the user-id is (RFC 7617 §2: a user-id has none).
    /// </summary>
    private static bool TryDecodeBasic(ReadOnlySpan<char> base64, Span<byte> decoded, out int length, out int colon)
    {
        colon = -1;
        length = 0;
        if (base64.Length > Base64.GetMaxEncodedToUtf8Length(MaxBasicDecodedLength) || !Convert.TryFromBase64Chars(base64, decoded, out length))
        {
            return false;
        }

        colon = decoded[..length].IndexOf((byte)':');
        return colon >= 0;
    }

    private static bool TryReadBasicPassword(ReadOnlySpan<char> base64, Span<char> token, out int length)
    {
        length = 0;
        Span<byte> decoded = stackalloc byte[MaxBasicDecodedLength];
        try
        {
            if (!TryDecodeBasic(base64, decoded, out int decodedLength, out int colon))
            {
                return false;
            }

            ReadOnlySpan<byte> password = decoded[(colon + 1)..decodedLength];
            int limit = Math.Min(token.Length, MaxTokenLength);
            OperationStatus status = Utf8.ToUtf16(
                password, token[..limit], out int read, out int written, replaceInvalidSequences: false);
            if (status != OperationStatus.Done || read != password.Length || written == 0)
            {
                token[..limit].Clear();
                return false;
            }

            length = written;
            return true;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(decoded);
        }
    }
}
