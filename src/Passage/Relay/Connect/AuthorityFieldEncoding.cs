using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// How Kestrel reads an HTTP/2 request's <c>:authority</c> (and a <c>Host</c> field) for the CONNECT door: each byte one
/// Latin-1 character, as <see cref="Http2ConnectServer.FieldEncoding"/> reads every field, when every byte is one an
/// authority the relay takes can hold (<see cref="Http1Syntax.AuthorityChars"/>); otherwise as as many <c>!</c>, a
/// value Kestrel's host check lets through and the relay's own (<see cref="ConnectTarget"/>) refuses.
/// </summary>
/// <remarks>
/// Kestrel checks the host itself before any code of the relay's sees the request, and resets the stream
/// (<c>RST_STREAM</c> <c>PROTOCOL_ERROR</c>, no status, counted nowhere) for a byte it does not take in a host: obs-text
/// or UTF-8, a space, a control character, <c>@</c> or <c>/</c>, all of which the HTTP/1.1 door answers 400 with a
/// Proxy-Status. Read so, such an authority reaches the relay, which answers it as that door does. The value keeps its
/// length in bytes, which the request head's size is measured by; it is read by no one else, and never logged.
/// What the relay refuses for its shape rather than its bytes (<c>:80</c>, <c>[::1</c>) Kestrel may still reset.
/// </remarks>
internal sealed class AuthorityFieldEncoding : Encoding
{
    /// <summary>The one instance.</summary>
    public static AuthorityFieldEncoding Instance { get; } = new();

    /// <summary>What each byte of an authority no host can be read from becomes: a host character to Kestrel, not to the relay.</summary>
    internal const char Unreadable = '!';

    private AuthorityFieldEncoding()
    {
    }

    /// <summary>Whether Kestrel reads a field named <paramref name="name"/> in this encoding: <c>:authority</c> and <c>Host</c>.</summary>
    public static bool Reads(string name) =>
        string.Equals(name, ":authority", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "Host", StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc />
    public override int GetByteCount(char[] chars, int index, int count) => Latin1.GetByteCount(chars, index, count);

    /// <inheritdoc />
    public override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex) =>
        Latin1.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    /// <inheritdoc />
    public override int GetCharCount(byte[] bytes, int index, int count) => GetCharCount(bytes.AsSpan(index, count));

    /// <inheritdoc />
    public override int GetCharCount(ReadOnlySpan<byte> bytes) => bytes.Length;

    /// <inheritdoc />
    public override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex) =>
        GetChars(bytes.AsSpan(byteIndex, byteCount), chars.AsSpan(charIndex));

    /// <inheritdoc />
    public override int GetChars(ReadOnlySpan<byte> bytes, Span<char> chars)
    {
        if (bytes.IndexOfAnyExcept(Http1Syntax.AuthorityChars) < 0)
        {
            return Latin1.GetChars(bytes, chars);
        }
        if (chars.Length < bytes.Length)
        {
            throw new ArgumentException("too small for the characters", nameof(chars));
        }
        chars[..bytes.Length].Fill(Unreadable);
        return bytes.Length;
    }

    /// <inheritdoc />
    public override int GetMaxByteCount(int charCount) => charCount;

    /// <inheritdoc />
    public override int GetMaxCharCount(int byteCount) => byteCount;
}
