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
    public static bool Names(IEnumerable<string?> connection, string name) =>
        ConnectionOptions(connection).Contains(name, StringComparer.OrdinalIgnoreCase);
}
