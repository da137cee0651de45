using System.Buffers;
using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// Formats the value of a <c>Proxy-Status</c> response header (RFC 9209 §2): one list member naming this proxy,
/// with its <c>error</c> type and, optionally, human-readable <c>details</c>, e.g.
/// <c>passage; error=dns_error; details="no such name"</c>.
/// </summary>
/// <remarks>
/// The value is an RFC 8941 structured-field list. The proxy name is an sf-token when it has a token's shape
/// (§3.3.4: ALPHA or <c>*</c>, then tchar, <c>:</c> or <c>/</c>) and an sf-string otherwise; <c>error</c> is an
/// sf-token (RFC 9209 §2.1.1); <c>details</c> is an sf-string (RFC 9209 §2.1.5). An sf-string holds printable
/// ASCII only (RFC 8941 §3.3.3), with <c>\</c> and <c>"</c> escaped by a backslash: every other character —
/// controls, DEL, anything beyond ASCII — is replaced by <c>?</c>, one per code point. Strings are cut to
/// <see cref="MaxStringLength"/> bytes between the quotes, ending in <c>...</c> when cut. Parameters are written
/// <c>"; key=value"</c> as in RFC 9209's examples; RFC 8941 §4.2.3.2 parsers skip the space.
/// </remarks>
internal static class ProxyStatus
{
    /// <summary>The proxy name Passage uses for itself when none is configured.</summary>
    public const string DefaultProxyName = "passage";

    /// <summary>The most bytes an sf-string (the proxy name or the details) takes between its quotes, escapes included.</summary>
    public const int MaxStringLength = 256;

    /// <summary>The longest error type accepted (registered types are under 40 characters).</summary>
    public const int MaxErrorTypeLength = 64;

    // Quotes, "; error=", "; details=", a token or string name, the error type and the details.
    private const int MaxValueLength = (2 * (MaxStringLength + 2)) + MaxErrorTypeLength + 32;

    private static readonly SearchValues<char> s_tokenTail =
        SearchValues.Create("!#$%&'*+-.^_`|~:/0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz");

    private static readonly SearchValues<char> s_errorTypeChars =
        SearchValues.Create("_0123456789abcdefghijklmnopqrstuvwxyz");

    /// <summary>The header value for <paramref name="reason"/>, with its RFC 9209 error type.</summary>
    /// <param name="reason">Why the request was turned away.</param>
    /// <param name="details">Text for a human, or null for none. Never put bytes the client sent in it.</param>
    /// <param name="proxyName">The name of this proxy.</param>
    /// <returns>The value, ASCII, at most a few hundred characters.</returns>
    public static string Format(RefusalReason reason, string? details, string proxyName = DefaultProxyName) =>
        Format(proxyName, reason.ProxyStatusErrorType(), details);

    /// <summary>The header value naming <paramref name="proxyName"/> with <paramref name="errorType"/> and <paramref name="details"/>.</summary>
    /// <param name="proxyName">The name of this proxy.</param>
    /// <param name="errorType">An RFC 9209 §2.3 error type: lower-case letters, digits and underscores, starting with a letter.</param>
    /// <param name="details">Text for a human, or null for none.</param>
    /// <returns>The value, ASCII.</returns>
    /// <exception cref="ArgumentException"><paramref name="errorType"/> is not a valid error type (a caller bug).</exception>
    public static string Format(string proxyName, string errorType, string? details)
    {
        Span<byte> value = stackalloc byte[MaxValueLength];
        int length = Write(value, proxyName, errorType, details);
        return Encoding.ASCII.GetString(value[..length]);
    }

    /// <summary>Writes the header value into <paramref name="output"/> (without a line end).</summary>
    /// <param name="output">Where the value goes.</param>
    /// <param name="proxyName">The name of this proxy.</param>
    /// <param name="errorType">An RFC 9209 §2.3 error type.</param>
    /// <param name="details">Text for a human, or null for none.</param>
    /// <exception cref="ArgumentException"><paramref name="errorType"/> is not a valid error type (a caller bug).</exception>
    public static void Write(IBufferWriter<byte> output, string proxyName, string errorType, string? details)
    {
        ArgumentNullException.ThrowIfNull(output);
        var span = output.GetSpan(MaxValueLength);
        output.Advance(Write(span, proxyName, errorType, details));
    }

    private static int Write(Span<byte> destination, string proxyName, string errorType, string? details)
    {
        ArgumentNullException.ThrowIfNull(proxyName);
        ArgumentNullException.ThrowIfNull(errorType);
        if (errorType.Length is 0 or > MaxErrorTypeLength || !char.IsAsciiLetterLower(errorType[0]) || errorType.AsSpan().IndexOfAnyExcept(s_errorTypeChars) >= 0)
        {
            throw new ArgumentException("not an RFC 9209 proxy error type", nameof(errorType));
        }

        int written;
        if (IsToken(proxyName))
        {
            written = Encoding.ASCII.GetBytes(proxyName, destination);
        }
        else
        {
            written = WriteString(destination, proxyName);
        }

        written += Append(destination[written..], "; error="u8);
        written += Encoding.ASCII.GetBytes(errorType, destination[written..]);
        if (details is not null)
        {
            written += Append(destination[written..], "; details="u8);
            written += WriteString(destination[written..], details);
        }

        return written;
    }

    /// <summary>RFC 8941 §3.3.4: <c>sf-token = ( ALPHA / "*" ) *( tchar / ":" / "/" )</c>, here bounded in length.</summary>
    private static bool IsToken(string name) =>
        name.Length is > 0 and <= MaxStringLength
        && (char.IsAsciiLetter(name[0]) || name[0] == '*')
        && name.AsSpan(1).IndexOfAnyExcept(s_tokenTail) < 0;

    /// <summary>
    /// RFC 8941 §4.1.6: an sf-string in quotes, <c>\</c> and <c>"</c> escaped, every character outside printable
    /// ASCII (%x20-7E) replaced by <c>?</c>, cut to <see cref="MaxStringLength"/> bytes between the quotes.
    /// </summary>
    private static int WriteString(Span<byte> destination, string text)
    {
        const int Ellipsis = 3;
        int budget = EscapedLength(text) <= MaxStringLength ? MaxStringLength : MaxStringLength - Ellipsis;
        int at = 0;
        destination[at++] = (byte)'"';
        int inside = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            int needed = c is '\\' or '"' ? 2 : 1;
            if (inside + needed > budget)
            {
                at += Append(destination[at..], "..."u8);
                break;
            }

            if (needed == 2)
            {
                destination[at++] = (byte)'\\';
                destination[at++] = (byte)c;
            }
            else
            {
                destination[at++] = c is >= ' ' and <= '~' ? (byte)c : (byte)'?';
            }

            inside += needed;
            if (IsSurrogatePair(text, i))
            {
                // One replacement per code point, not per UTF-16 unit.
                i++;
            }
        }

        destination[at++] = (byte)'"';
        return at;
    }

    /// <summary>The bytes <see cref="WriteString"/> would put between the quotes if it cut nothing.</summary>
    private static int EscapedLength(string text)
    {
        int length = 0;
        for (int i = 0; i < text.Length; i++)
        {
            length += text[i] is '\\' or '"' ? 2 : 1;
            if (length > MaxStringLength)
            {
                break;
            }

            if (IsSurrogatePair(text, i))
            {
                i++;
            }
        }

        return length;
    }

    private static bool IsSurrogatePair(string text, int i) =>
        char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]);

    private static int Append(Span<byte> destination, ReadOnlySpan<byte> bytes)
    {
        bytes.CopyTo(destination);
        return bytes.Length;
    }
}
