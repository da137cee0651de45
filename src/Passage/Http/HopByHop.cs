using Microsoft.Extensions.Primitives;

namespace Passage.Http;

/// <summary>
/// RFC 9110 §7.6.1: the fields that describe one connection rather than the message, which an intermediary does not
/// forward: a fixed core (Connection, Proxy-Connection, Keep-Alive, TE, Transfer-Encoding, Upgrade), and every field a
/// message's Connection field names. Each forwarder states its departures from the core beside its use of it: the
/// client's HTTP proxy (<c>MessageFields</c>) and the tunnel (<c>TunnelHeaders</c>).
/// </summary>
/// <remarks>
/// Trailer is no part of the core: it announces the message's trailer fields (RFC 9110 §6.6.2), and goes wherever they
/// go. (RFC 2616 §13.5.1 listed "Trailers", which meant TE's <c>trailers</c> value, not this field.)
/// </remarks>
internal static class HopByHop
{
    private static readonly HashSet<string> s_core = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Proxy-Connection", "Keep-Alive", "TE", "Transfer-Encoding", "Upgrade",
    };

    /// <summary>Whether <paramref name="name"/> is one of the fields that are always this hop's.</summary>
    public static bool IsCore(string name) => s_core.Contains(name);

    /// <summary>
    /// The members of a message's Connection field values (RFC 9110 §7.6.1: a comma-separated list of field names and
    /// connection options such as <c>close</c>), as written, without the whitespace around them.
    /// </summary>
    public static IEnumerable<string> ConnectionOptions(IEnumerable<string?> connection) => FieldSyntax.ListMembers(connection);

    /// <summary>Whether the Connection field values <paramref name="connection"/> name the field <paramref name="name"/>.</summary>
    public static bool Names(IEnumerable<string?> connection, string name) => connection.Any(value => ValueNames(value, name));

    /// <summary>
    /// <see cref="Names(IEnumerable{string?}, string)"/> for values as a message holds them. A forwarder asks this for each
    /// of a message's fields, so the values are read in place, nothing made of them: a Connection field of thousands of
    /// members, asked of thousands of fields (an answer head may hold 64 KiB), made a string of every member each time,
    /// seconds of work for one message.
    /// </summary>
    public static bool Names(StringValues connection, string name)
    {
        foreach (var value in connection)
        {
            if (ValueNames(value, name))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Whether a member of the one Connection field value <paramref name="value"/> is the field name <paramref name="name"/>
    /// (a token): where the name is found, it is all of a member, from a comma or the start to a comma or the end, but for
    /// whitespace. Found by its first character, which a vector search finds (a search that ignores case finds it one
    /// character at a time where globalization is invariant, as Passage's is).
    /// </summary>
    private static bool ValueNames(ReadOnlySpan<char> value, string name)
    {
        if (name.Length == 0 || name.AsSpan().IndexOfAny(',', ' ', '\t') >= 0)
        {
            return false;
        }
        var (lower, upper) = (char.ToLowerInvariant(name[0]), char.ToUpperInvariant(name[0]));
        for (var from = 0; value.Length - from >= name.Length;)
        {
            var found = value[from..].IndexOfAny(lower, upper);
            if (found < 0)
            {
                return false;
            }
            var at = from + found;
            if (value.Length - at >= name.Length && value.Slice(at, name.Length).Equals(name, StringComparison.OrdinalIgnoreCase)
                && value[..at].TrimEnd(" \t") is var before && (before.IsEmpty || before[^1] == ',')
                && value[(at + name.Length)..].TrimStart(" \t") is var after && (after.IsEmpty || after[0] == ','))
            {
                return true;
            }
            from = at + 1;
        }
        return false;
    }
}
