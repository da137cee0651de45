namespace Passage.Http;

/// <summary>
/// RFC 9110 §6.5.1: the fields a trailer section may not carry, whoever forwards it: those that frame, route, authenticate
/// or modify the message or describe its content (they must be known before the content is), and the hop-by-hop core
/// (<see cref="HopByHop"/>). Each forwarder states its departures beside its use of it: the client's HTTP proxy
/// (<c>FramedBody</c>, with the fields its heads keep back) and the tunnel (<c>TunnelHeaders.IsAllowedTrailer</c>).
/// </summary>
internal static class TrailerFields
{
    /// <summary>The fields barred from trailer sections beyond the hop-by-hop core.</summary>
    private static readonly HashSet<string> s_barred = new(StringComparer.OrdinalIgnoreCase)
    {
        "Content-Length", "Content-Encoding", "Content-Type", "Content-Range", "Trailer", "Host", "Authorization",
        "Proxy-Authorization", "Proxy-Authenticate", "WWW-Authenticate", "Set-Cookie", "Cookie", "Cache-Control",
        "Expect", "Max-Forwards", "Pragma", "Range", "Age", "Expires", "Date", "Location", "Retry-After", "Vary",
        "Warning", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since", "If-Range",
        // The path a request took, which each intermediary appends to in the header section (RFC 9110 §7.6.3): in a
        // trailer section it would pass by the tunnel ends' loop check and read to the recipient as hops never made.
        "Via",
    };

    /// <summary>Whether a trailer section may carry a field named <paramref name="name"/>.</summary>
    public static bool MayCarry(string name) => !s_barred.Contains(name) && !HopByHop.IsCore(name);

    /// <summary>
    /// Whether a request in <paramref name="protocol"/> (<c>HTTP/1.1</c>, ...) whose TE field values are <paramref name="te"/>
    /// accepts trailer fields, so that a forwarder that passes trailers on end to end may send <c>TE: trailers</c> to
    /// the next hop in its stead (RFC 9110 §10.1.4; gRPC servers require it). TE is hop-by-hop, so it is not forwarded
    /// as it came: only its <c>trailers</c> member counts (a member, not a substring), and never from HTTP/1.0, whose
    /// recipient gets no chunked framing and so no trailer section (RFC 9112 §7).
    /// </summary>
    public static bool Accepted(string protocol, IEnumerable<string?> te) =>
        protocol != "HTTP/1.0"
        && te.SelectMany(value => (value ?? "").Split(',', StringSplitOptions.TrimEntries))
            .Any(member => member.Equals("trailers", StringComparison.OrdinalIgnoreCase));
}
