using System.Text;

namespace Passage.Relay.Connect;

/// <summary>
/// How Kestrel reads an HTTP/2 request's <c>:authority</c> (and a <c>Host</c> field) for the CONNECT door: each byte one
/// Latin-1 character, as <see cref="Http2ConnectServer.FieldEncoding"/> reads every field, when it is an authority the
/// relay takes (<see cref="Takes"/>); otherwise as as many <c>!</c>, a value Kestrel's host check lets through and the
/// relay's own (<see cref="ConnectTarget"/>) refuses.
/// </summary>
/// <remarks>
/// Kestrel checks the host itself before any code of the relay's sees the request (<c>Http2Stream.TryValidateAuthorityAndHost</c>,
/// which calls <c>HttpUtilities.IsHostHeaderValid</c>), and resets the stream (<c>RST_STREAM</c> <c>PROTOCOL_ERROR</c>, no
/// status, counted nowhere) for a value it does not take as a host: for a byte (obs-text or UTF-8, a space, a control
/// character, <c>@</c> or <c>/</c>) or for its shape (a port alone, <c>:443</c>; a bracket left open, <c>[::1</c>;
/// anything but <c>:</c> and digits after the host; a bracketed literal shorter than <c>[::1]</c>, so <c>[::]</c>),
/// all of which the HTTP/1.1 door answers 400 with a Proxy-Status. Read so, such an authority reaches the relay, which
/// answers it as that door does. The value keeps its length in bytes, which the request head's size is measured by; it
/// is read by no one else, and never logged. An empty value never reaches an encoding; Kestrel lets it through, and the
/// relay answers it 400 too.
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
        if (Takes(bytes))
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

    /// <summary>
    /// Whether <paramref name="authority"/> is read as it came: bytes an authority can hold (<see cref="Http1Syntax.AuthorityChars"/>),
    /// as a host and optional port (<see cref="ConnectTarget.TryParseAuthority"/>), and not <c>[::]</c>, the one such
    /// authority Kestrel's host check refuses for its length. The unspecified address names no host to reach the relay
    /// at, and as a destination the address policy refuses it in any spelling.
    /// </summary>
    internal static bool Takes(ReadOnlySpan<byte> authority) =>
        authority.IndexOfAnyExcept(Http1Syntax.AuthorityChars) < 0
        && ConnectTarget.TryParseAuthority(authority, out var host, out _, out _)
        && !authority[host].SequenceEqual("::"u8);

    /// <inheritdoc />
    public override int GetMaxByteCount(int charCount) => charCount;

    /// <inheritdoc />
    public override int GetMaxCharCount(int byteCount) => byteCount;
}
