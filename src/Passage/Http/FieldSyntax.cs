using System.Buffers;
using System.Text;
using Passage.Relay.Connect;

namespace Passage.Http;

/// <summary>
/// Field names and values as text, checked against the same byte classes the CONNECT head reader uses
/// (<see cref="Http1Syntax"/>), for fields Passage writes onto an HTTP/1.1 connection itself.
/// </summary>
internal static class FieldSyntax
{
    /// <summary>
    /// The members of a comma-separated list field's value (RFC 9110 §5.6.1: Connection, Transfer-Encoding, TE, ...), as
    /// written, without the whitespace around them; empty members are left out. A comma within a quoted string (a
    /// parameter's value, RFC 9110 §5.6.4, its backslash escapes included) is part of its member: <c>x;p=", trailers, "</c>
    /// is one member, not a TE asking for trailers.
    /// </summary>
    public static string[] ListMembers(string? value)
    {
        if (string.IsNullOrEmpty(value))
        {
            return [];
        }
        if (!value.Contains('"'))
        {
            return value.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        }
        var members = new List<string>();
        var start = 0;
        var quoted = false;
        for (var i = 0; i < value.Length; i++)
        {
            switch (value[i])
            {
                case '\\' when quoted:
                    i++;
                    break;
                case '"':
                    quoted = !quoted;
                    break;
                case ',' when !quoted:
                    Add(members, value[start..i]);
                    start = i + 1;
                    break;
            }
        }
        // An unclosed quoted string runs to the end of the value.
        Add(members, value[start..]);
        return [.. members];

        static void Add(List<string> members, string member)
        {
            if (member.Trim() is { Length: > 0 } trimmed)
            {
                members.Add(trimmed);
            }
        }
    }

    /// <summary>The members of all of a list field's values (one per field line), in order (see <see cref="ListMembers(string?)"/>).</summary>
    public static IEnumerable<string> ListMembers(IEnumerable<string?> values) => values.SelectMany(ListMembers);

    /// <summary>
    /// Parses a field line (RFC 9112 §5: <c>field-name ":" OWS field-value OWS</c>), or null when it is not one.
    /// An obs-fold continuation (a line starting with whitespace) is not one either (RFC 9112 §5.2).
    /// </summary>
    public static KeyValuePair<string, string>? ParseLine(string line)
    {
        var colon = line.IndexOf(':');
        if (colon <= 0)
        {
            return null;
        }
        var name = line[..colon];
        var value = line[(colon + 1)..].Trim(' ', '\t');
        return IsToken(name) && IsValue(value) ? new(name, value) : null;
    }

    /// <summary>RFC 9110 §5.1: a field name is a token.</summary>
    public static bool IsToken(string name)
    {
        if (name.Length == 0)
        {
            return false;
        }
        foreach (var c in name)
        {
            if (!IsTokenChar(c))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>RFC 9110 §5.6.2: whether <paramref name="c"/> may appear in a token (a tchar).</summary>
    public static bool IsTokenChar(char c) => c <= 0x7F && Http1Syntax.TokenChars.Contains((byte)c);

    /// <summary>RFC 9110 §5.5: a field value holds no control characters other than HTAB (so no CR, LF or NUL), and no code point above Latin-1.</summary>
    public static bool IsValue(string value)
    {
        foreach (var c in value)
        {
            if (!IsValueCharacter(c))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// <see cref="IsValue(string)"/> for a value still in UTF-8, read character by character without making it text: for
    /// a value that must not become a string (credentials: a string cannot be cleared). Not UTF-8 is no value either.
    /// </summary>
    public static bool IsValue(ReadOnlySpan<byte> utf8)
    {
        while (!utf8.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(utf8, out var rune, out var length) != OperationStatus.Done || !IsValueCharacter(rune.Value))
            {
                return false;
            }
            utf8 = utf8[length..];
        }
        return true;
    }

    private static bool IsValueCharacter(int c) => c <= 0xFF && !Http1Syntax.ForbiddenInFieldValue.Contains((byte)c);
}
