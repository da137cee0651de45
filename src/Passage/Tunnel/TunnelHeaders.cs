using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;
using Passage.Http;

namespace Passage.Tunnel;

/// <summary>
/// Which header fields cross the tunnel, and the few the two ends use to talk to each other. Those all start
/// with <c>passage-tunnel-</c>; the client end removes any such field that a local application sent, and the
/// server end any that the backend sent, so neither can steer the other end.
/// </summary>
internal static class TunnelHeaders
{
    /// <summary>
    /// How field values are read and written everywhere in the tunnel: byte for byte. RFC 9110 §5.5 lets a value hold
    /// octets beyond ASCII (obs-text) that a recipient treats as opaque; .NET's HTTP stacks refuse them by default (an
    /// application's request got a bare 400 and a backend's answer a 500), and Latin-1 maps every octet to one char and back.
    /// </summary>
    public static readonly System.Text.Encoding FieldEncoding = System.Text.Encoding.Latin1;

    /// <summary>
    /// The most an answer head may hold, wherever an end reads one (the backend's, the server end's over the link): the
    /// HTTP client's own default, so one written by Passage's HTTP/1.1 code is held to the same bound.
    /// </summary>
    public const int MaxAnswerHeadBytes = 64 * 1024;

    /// <summary>The prefix of the fields only the two ends exchange.</summary>
    public const string Prefix = "passage-tunnel-";

    /// <summary>On the client's session request: the server answers it itself and holds it open for the session's life.</summary>
    public const string Session = "passage-tunnel-session";

    /// <summary>On a request: the client can take a response body compressed with the given coding (<c>br</c>).</summary>
    public const string AcceptEncoding = "passage-tunnel-accept-encoding";

    /// <summary>On a request or response: its body crossed the link compressed with this coding (<c>br</c>).</summary>
    public const string Encoding = "passage-tunnel-encoding";

    /// <summary>With <see cref="Encoding"/>: the body's length before compression, restored as Content-Length on the far side.</summary>
    public const string Length = "passage-tunnel-length";

    /// <summary>
    /// On a 200 answer to extended CONNECT: the backend switched protocols (101). Needed because a backend that
    /// declines an upgrade may answer 200 too, and that must reach the application as a plain answer.
    /// </summary>
    public const string Switched = "passage-tunnel-switched";

    /// <summary>
    /// On a 200 answer to extended CONNECT without <see cref="Switched"/>: the backend's real 2xx status. HTTP/2
    /// lets a 2xx answer to extended CONNECT only open the tunnel (RFC 8441 §5), so a declined upgrade that the
    /// backend answered with a 2xx travels as 200 plus this field, and its body through the opened stream.
    /// </summary>
    public const string Status = "passage-tunnel-status";

    /// <summary>
    /// On a request: its body crosses the link in HTTP/1.1 chunked framing (RFC 9112 §7.1), trailer section
    /// included. The .NET HTTP/2 client cannot send request trailers, so the client end frames a request that
    /// declares trailers itself and the server end reads the framing back (value: <c>chunked</c>).
    /// </summary>
    public const string Framing = "passage-tunnel-framing";

    /// <summary>
    /// On a request to the server end: the Host the application sent, which the server end gives the backend. The
    /// request itself goes to the server end's own authority: the HTTP client keys its connections and picks its TLS
    /// server name by the request's Host, so carrying the application's there opened one TLS connection per Host
    /// (never closed) and named each Host in clear text in its ClientHello.
    /// </summary>
    public const string Host = "passage-tunnel-host";

    /// <summary>
    /// On an answer from the server end: the server end refused the request itself (value: the RFC 9209 error type of
    /// its Proxy-Status), so that the client end counts it refused. A backend's answer may carry a Proxy-Status too; it
    /// is the backend's answer all the same.
    /// </summary>
    public const string Refused = "passage-tunnel-refused";

    /// <summary>
    /// On a request from the client end: the pseudonym of the Via entry it appended, the last one, which the server end
    /// puts its own in place of (see <c>Intermediary</c>).
    /// </summary>
    public const string Via = "passage-tunnel-via";

    /// <summary>The one framing <see cref="Framing"/> names.</summary>
    public const string Chunked = "chunked";

    /// <summary>The only coding used: Brotli (RFC 7932).</summary>
    public const string Brotli = "br";

    /// <summary>
    /// The tunnel's one addition to the hop-by-hop core: what a client and the proxy it talks to exchange (RFC 9110 §11.7),
    /// credentials and challenges alike. An application's Proxy-Authorization is meant for the client end, which asks
    /// for none, and reached the backend in the clear; a backend's challenge is for the server end's HTTP client.
    /// </summary>
    private static readonly HashSet<string> s_proxyAuthentication = new(StringComparer.OrdinalIgnoreCase)
    {
        "Proxy-Authorization", "Proxy-Authenticate", "Proxy-Authentication-Info",
    };

    /// <summary>
    /// Whether <paramref name="name"/> may be forwarded from a message whose Connection field is
    /// <paramref name="connection"/>: not hop-by-hop (<see cref="HopByHop"/>, RFC 9110 §7.6.1; HTTP/2 forbids those
    /// outright, RFC 9113 §8.2.2), not named in Connection, not proxy authentication (<see cref="s_proxyAuthentication"/>),
    /// not one of ours, not an HTTP/2 pseudo-field. The core is
    /// taken as it is: Transfer-Encoding stays behind, since each hop of the tunnel frames bodies anew; TE is handled
    /// apart (only "trailers" survives, <see cref="TrailerFields.Accepted"/>); Trailer goes on, as the trailer fields it announces
    /// do (<see cref="IsAllowedTrailer"/>).
    /// </summary>
    public static bool IsEndToEnd(string name, in Nominees connection) =>
        !HopByHop.IsCore(name) && !s_proxyAuthentication.Contains(name) && !name.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)
        && !name.StartsWith(':') && !connection.Name(name);

    /// <summary>
    /// The field names a message's Connection values nominate (RFC 9110 §7.6.1), taken once per message: asked for each of
    /// its fields, a scan of the values per field cost fields × members (a 64 KiB head of both, about a second). A short
    /// Connection, as nearly every message has (<c>keep-alive</c>, <c>close</c>), is scanned as it lies, with no set made.
    /// </summary>
    public readonly struct Nominees
    {
        // Beyond this many characters of Connection values, a set is made.
        private const int ScanLimit = 64;
        private readonly StringValues _values;
        private readonly HashSet<string>? _set;

        public Nominees(StringValues connection)
        {
            _values = connection;
            var length = 0;
            foreach (var value in connection)
            {
                length += value?.Length ?? 0;
            }
            _set = length > ScanLimit ? new HashSet<string>(HopByHop.ConnectionOptions(connection), StringComparer.OrdinalIgnoreCase) : null;
        }

        /// <summary>Whether Connection names the field <paramref name="name"/>.</summary>
        public bool Name(string name) => _set?.Contains(name) ?? (_values.Count > 0 && HopByHop.Names(_values, name));
    }

    /// <summary>
    /// Whether a trailer field named <paramref name="name"/> is passed on: one a trailer section may carry
    /// (<see cref="TrailerFields"/>, RFC 9110 §6.5.1) and end-to-end (<see cref="IsEndToEnd"/>: not one of ours either).
    /// </summary>
    public static bool IsAllowedTrailer(string name) => TrailerFields.MayCarry(name) && IsEndToEnd(name, default);

    /// <summary>
    /// The field lines of a message's trailer section, <paramref name="lines"/>, that its head's Connection field,
    /// <paramref name="connection"/>, does not name: a field it names is this hop's, in the trailer section as in the head
    /// (RFC 9110 §7.6.1), and goes no further.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, string>> NotNominated(IEnumerable<KeyValuePair<string, string>> lines, Nominees connection) =>
        lines.Where(line => !connection.Name(line.Key));

    /// <summary>True when the message announces trailer fields in a Trailer field (RFC 9110 §6.6.2).</summary>
    public static bool DeclaresTrailers(IHeaderDictionary headers) => !StringValues.IsNullOrEmpty(headers.Trailer);

    /// <summary>One name/value pair per field line of <paramref name="fields"/>.</summary>
    public static IEnumerable<KeyValuePair<string, string>> Lines(IEnumerable<KeyValuePair<string, StringValues>> fields)
    {
        foreach (var (name, values) in fields)
        {
            foreach (var value in values)
            {
                if (value is not null)
                {
                    yield return new(name, value);
                }
            }
        }
    }
}
