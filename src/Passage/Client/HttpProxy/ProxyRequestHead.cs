using System.Globalization;
using System.Text;
using System.Text.Unicode;
using Passage.Configuration;
using Passage.Http;
using Passage.Relay.Connect;
using Passage.Relay;

namespace Passage.Client.HttpProxy;

/// <summary>
/// A request head as a local HTTP proxy receives it (RFC 9112 §3.2): CONNECT in authority-form, or
/// a plain <c>http://</c> request in absolute-form, which is forwarded in origin-form (its path and query as written,
/// Host its authority) with the proxy's own hop-by-hop headers removed. Field lines are checked as the relay checks its own (RFC 9110 §5:
/// a token for a name, no control character but HTAB in a value, no obs-fold), and a request's body framing must
/// be unambiguous (RFC 9112 §6.3): never Content-Length beside Transfer-Encoding, Content-Length values that all
/// agree, and chunked last in Transfer-Encoding. Otherwise the request is refused, since a head the origin reads
/// differently from this proxy is how requests get smuggled.
/// </summary>
internal sealed record ProxyRequestHead(
    string Method, string Host, int Port, string PathAndQuery, string Version, IReadOnlyList<(string Name, string Value)> Headers,
    BodyFraming Framing = BodyFraming.None, long ContentLength = 0, string Authority = "")
{
    public bool IsConnect => Method == "CONNECT";

    /// <summary>
    /// True when the application speaks HTTP/1.0: its answer comes without interim (1xx) answers (RFC 9110 §15.2) and
    /// without chunked framing (RFC 9112 §6.1, §7), see <see cref="OriginAnswerConnection"/>.
    /// </summary>
    public bool IsHttp10 => Version == "HTTP/1.0";

    /// <summary>
    /// Whether a field of the application's request, in its head or in its chunked body's trailer section, goes on to the
    /// origin: not when it is this hop's (a hop-by-hop field, the proxy's own credentials, one Connection names), nor one
    /// this proxy writes itself (Host, Content-Length).
    /// </summary>
    public bool Forwards(string name) =>
        MessageFields.Forwards(name, _connectionOptions ??= MessageFields.ConnectionOptions(Headers))
        && !name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase) && !name.Equals("Host", StringComparison.OrdinalIgnoreCase);

    private HashSet<string>? _connectionOptions;

    /// <summary>
    /// Where the values of the request's <c>Proxy-Authorization</c> fields lie in the head it was parsed from, in order,
    /// their surrounding whitespace left out: this proxy's credentials (RFC 9110 §11.7.2), read from the head's bytes
    /// and never made into a string, which could not be cleared. They are no part of <see cref="Headers"/>, and so never
    /// go on to the origin.
    /// </summary>
    public IReadOnlyList<Range> Credentials { get; init; } = [];

    /// <summary>
    /// True when the application accepts trailer fields (its TE says <c>trailers</c>, and it speaks HTTP/1.1): the origin
    /// is asked for them in its stead (<see cref="TrailerFields.Accepted"/>), as a chunked answer's trailer section goes on.
    /// </summary>
    public bool AcceptsTrailers => TrailerFields.Accepted(
        Version, Headers.Where(h => h.Name.Equals("TE", StringComparison.OrdinalIgnoreCase)).Select(h => h.Value));

    /// <summary>
    /// The request's Max-Forwards (RFC 9110 §7.6.2), which only OPTIONS and TRACE heed: how many more intermediaries
    /// may forward it; 0 makes this proxy the final recipient, which answers itself. Null for any other method, and
    /// when there is no Max-Forwards, or not one number (1*DIGIT, below 10^18): the request goes on with it unchanged.
    /// </summary>
    /// <remarks>Asked of every request: the field lines are looked for only when the method heeds them.</remarks>
    public long? MaxForwards => Http.MaxForwards.Heeds(Method)
        ? Http.MaxForwards.Remaining(Method, Headers.Where(h => h.Name.Equals(Http.MaxForwards.Name, StringComparison.OrdinalIgnoreCase)).Select(h => h.Value).ToArray())
        : null;

    /// <summary>Parses a whole head (ending with the empty line). Null, with a reason, when it is not one this proxy serves.</summary>
    public static ProxyRequestHead? Parse(ReadOnlySpan<byte> head, out string? error) => Parse(head, out _, out error);

    /// <summary>
    /// Parses a whole head (ending with the empty line). Null when it is not one this proxy serves, with the refusal
    /// to answer (<see cref="RefusalReason.MalformedRequest"/>, or <see cref="RefusalReason.UnsupportedVersion"/> for
    /// a well-formed HTTP version other than 1.0 and 1.1, as the relay answers it) and why.
    /// </summary>
    public static ProxyRequestHead? Parse(ReadOnlySpan<byte> head, out RefusalReason refusal, out string? error)
    {
        // Line by line, each made text on its own: a Proxy-Authorization line never is (see Credentials).
        var requestLineEnd = head.IndexOf("\r\n"u8);
        if (ReadRequestLine(requestLineEnd < 0 ? head : head[..requestLineEnd], out refusal, out error) is not { } requestLine)
        {
            return null;
        }
        var headers = new List<(string, string)>();
        // A CONNECT's fields that announce content, judged on their bytes as the relay judges them (the first found).
        string? connectContent = null;
        var credentials = new List<Range>();
        for (var lineStart = requestLineEnd + 2; requestLineEnd >= 0;)
        {
            var length = head[lineStart..].IndexOf("\r\n"u8);
            var line = length < 0 ? head[lineStart..] : head.Slice(lineStart, length);
            if (line.IsEmpty)
            {
                break;
            }
            if (CredentialsIn(line) is { } value)
            {
                // This proxy's credentials: checked as any field value is, and only where they lie is kept.
                if (!FieldSyntax.IsValue(line[value]))
                {
                    error = "malformed header";
                    return null;
                }
                credentials.Add(new Range(lineStart + value.Start.Value, lineStart + value.End.Value));
            }
            // A field value's bytes beyond ASCII are opaque (RFC 9110 §5.5: obs-text; UTF-8 in practice, a file name in
            // Content-Disposition say): one character per byte, so that they go on to the origin as they came.
            else if (FieldSyntax.ParseLine(Encoding.Latin1.GetString(line)) is { } field)
            {
                headers.Add((field.Key, field.Value));
                if (connectContent is null && requestLine[0] == "CONNECT")
                {
                    var colon = line.IndexOf((byte)':');
                    var fieldValue = line[(colon + 1)..];
                    connectContent = Http1ConnectParser.ConnectFieldProblem(line[..colon], fieldValue[Http1Syntax.TrimWhitespace(fieldValue)]);
                }
            }
            else
            {
                error = "malformed header";
                return null;
            }
            if (length < 0)
            {
                break;
            }
            lineStart += length + 2;
        }
        var (method, target, version) = (requestLine[0], requestLine[1], requestLine[2]);
        if (method == "CONNECT")
        {
            // Read as the relay reads it: what it would refuse (an IPv6 zone, userinfo, no port, two Host fields, or none in
            // HTTP/1.1, content) is refused here at once. (An absolute-form request's Host fields are replaced by its
            // target's authority, RFC 9112 §3.2.2, whatever they are.)
            if (!TryAuthority(target, out var connectHost, out var connectPort, out error))
            {
                return null;
            }
            var hostFields = headers.Count(h => h.Item1.Equals("Host", StringComparison.OrdinalIgnoreCase));
            if ((Http1ConnectParser.HostFieldsProblem(version == "HTTP/1.1", hostFields) ?? connectContent) is { } problem)
            {
                error = problem;
                return null;
            }
            return new ProxyRequestHead(method, connectHost, connectPort, "", version, headers) { Credentials = credentials };
        }
        if (!TryAbsoluteForm(target, out var host, out var port, out var authority, out var pathAndQuery, out error))
        {
            return null;
        }
        if (pathAndQuery.Length == 0)
        {
            // RFC 9112 §3.2.4: the last proxy sends an OPTIONS whose URI has an empty path and no query as "OPTIONS *",
            // a question about the server as a whole; any other method asks for "/" (§3.2.1).
            pathAndQuery = method == "OPTIONS" ? "*" : "/";
        }
        if (!MessageFields.TryFraming(headers, version, response: false, out var framing, out var contentLength, out error))
        {
            return null;
        }
        return new ProxyRequestHead(method, host, port, pathAndQuery, version, headers, framing, contentLength, authority) { Credentials = credentials };
    }

    /// <summary>
    /// Reads a request line, without its CRLF (RFC 9112 §3: method SP request-target SP HTTP-version): its three parts,
    /// or null with the refusal to answer and why. Asked as soon as the line is whole, before the rest of the head comes
    /// (see <see cref="HeadReader"/>): what has not this shape is no HTTP request, and its sender (an SSH client, say,
    /// which sends its banner and waits) would wait for an answer as long as the proxy for the head's end.
    /// </summary>
    public static string[]? ReadRequestLine(ReadOnlySpan<byte> line, out RefusalReason refusal, out string? error)
    {
        refusal = RefusalReason.MalformedRequest;
        error = null;
        if (!Utf8.IsValid(line))
        {
            error = "the request line is not text";
            return null;
        }
        var text = Encoding.UTF8.GetString(line);
        var parts = text.Split(' ');
        if (parts.Length != 3 || !FieldSyntax.IsToken(parts[0]) || text.Any(char.IsControl))
        {
            error = "malformed request line";
            return null;
        }
        // Exactly HTTP/1.1 or HTTP/1.0. The origin is sent HTTP/1.1 either way (RFC 9110 §6.2: this proxy's own version).
        switch (Http1ConnectParser.ReadVersion(Encoding.Latin1.GetBytes(parts[2]), out _))
        {
            case Http1ConnectParser.VersionVerdict.Garbage:
                error = "HTTP version is malformed";
                return null;
            case Http1ConnectParser.VersionVerdict.Unsupported:
                refusal = RefusalReason.UnsupportedVersion;
                error = "only HTTP/1.1 and HTTP/1.0 are spoken here";
                return null;
        }
        return parts;
    }

    /// <summary>
    /// Where the value of a <c>Proxy-Authorization</c> field line lies in it, its surrounding whitespace left out (RFC 9112
    /// §5); null for a line of another field, or no field line.
    /// </summary>
    private static Range? CredentialsIn(ReadOnlySpan<byte> line)
    {
        var colon = line.IndexOf((byte)':');
        if (colon <= 0 || !Ascii.EqualsIgnoreCase(line[..colon], "Proxy-Authorization"u8))
        {
            return null;
        }
        var value = Http1Syntax.TrimWhitespace(line[(colon + 1)..]);
        return new Range(colon + 1 + value.Start.Value, colon + 1 + value.End.Value);
    }

    /// <summary>
    /// Reads an absolute-form target (RFC 9112 §3.2.2), <c>http</c> only, as it is written: its authority names the
    /// destination and is the Host the origin gets; its path and query go on byte for byte (RFC 9110 §7.7: a proxy
    /// does not rewrite them; no dot segment removed, no percent-encoding undone); an empty path comes back empty when
    /// there is no query (the caller picks "/" or "*"), and as "/" before a query (RFC 9112 §3.2.1). The authority is read as the relay reads a CONNECT target (<see cref="ConnectTarget"/>,
    /// port 80 when none is given): no userinfo, no IPv6 zone, nothing a URI parser could read another way.
    /// </summary>
    private static bool TryAbsoluteForm(string target, out string host, out int port, out string authority, out string pathAndQuery, out string? error)
    {
        const string Scheme = "http://";
        host = authority = pathAndQuery = "";
        port = 0;
        if (!target.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            error = "only CONNECT and absolute http:// requests are served";
            return false;
        }
        if (target.AsSpan().ContainsAnyExceptInRange('!', '~'))
        {
            error = "request target holds a byte that is not visible ASCII";
            return false;
        }
        var rest = target[Scheme.Length..];
        var end = rest.AsSpan().IndexOfAny('/', '?', '#');
        authority = end < 0 ? rest : rest[..end];
        pathAndQuery = end < 0 ? "" : rest[end..];
        if (pathAndQuery.Contains('#', StringComparison.Ordinal))
        {
            error = "a fragment is no part of a request target";
            return false;
        }
        if (pathAndQuery.StartsWith('?'))
        {
            pathAndQuery = "/" + pathAndQuery;
        }
        if (authority.Contains('@', StringComparison.Ordinal))
        {
            // user:password@ is for the origin's eyes only if the application puts it in Authorization itself.
            error = "userinfo in the URL is not forwarded";
            return false;
        }
        if (authority.EndsWith(':') && authority[..^1] is var bare && (bare.StartsWith('[') ? bare.EndsWith(']') : !bare.Contains(':', StringComparison.Ordinal)))
        {
            // An empty port is the scheme's default (RFC 3986 §3.2.3, RFC 9110 §4.2.1): sent on without the colon. (Only
            // after a host: "host:80:" is no authority, and is refused below.)
            authority = bare;
        }
        return TryAuthority(authority, out host, out port, out error, defaultPort: 80);
    }

    /// <summary>
    /// Reads <c>host:port</c> as the relay reads a CONNECT target (<see cref="ConnectTarget"/>): a name or a bracketed
    /// IPv6 literal without a zone, and a port from 1 to 65535, which may be left out when there is a
    /// <paramref name="defaultPort"/>. The host comes back normalized (<see cref="HostPort.Normalize"/>).
    /// </summary>
    private static bool TryAuthority(string hostAndPort, out string host, out int port, out string? error, int? defaultPort = null)
    {
        host = "";
        port = 0;
        if (hostAndPort.AsSpan().ContainsAnyExceptInRange('!', '~'))
        {
            error = "request target holds a byte that is not visible ASCII";
            return false;
        }
        var bytes = Encoding.ASCII.GetBytes(hostAndPort);
        if (!(defaultPort is null
                ? ConnectTarget.TryParse(bytes, out var range, out port, out var detail)
                : ConnectTarget.TryParseAuthority(bytes, out range, out port, out detail)))
        {
            error = detail;
            return false;
        }
        if (port == 0)
        {
            port = defaultPort!.Value;
        }
        host = HostPort.Normalize(Encoding.ASCII.GetString(bytes[range]));
        if (PassageClient.AsRelaysRead(host, port) is null)
        {
            // A name the relay's host syntax refuses (an empty label, a numeric last one, only dots: empty once its last
            // dot is dropped) is refused here, with the head, as any relay would refuse it: no tunnel is asked for it.
            error = PassageClient.NotARelayHost;
            return false;
        }
        error = null;
        return true;
    }

    /// <summary>
    /// The head to send to the origin through the tunnel: origin-form, in HTTP/1.1 whatever the application's version
    /// (RFC 9110 §6.2: an intermediary sends its own), the proxy's hop-by-hop headers removed, Host the target's
    /// authority whatever Host fields the application sent, and sent without one (RFC 9112 §3.2.2: the origin learns the
    /// destination the tunnel goes to, nothing else), Content-Length written once as it was read, an OPTIONS or TRACE
    /// request's Max-Forwards one less (<see cref="MaxForwards"/>; this proxy answers one of 0 itself), and
    /// <c>Connection: close</c> (one request per tunnel). An HTTP/1.0 request's 100-continue expectation is left out: its
    /// recipient ignores it (RFC 9110 §10.1.1), and the origin, reading HTTP/1.1, would not. An application that accepts
    /// trailers (<see cref="AcceptsTrailers"/>) has this hop send <c>TE: trailers</c>, named in Connection as RFC 9110
    /// §10.1.4 requires.
    /// </summary>
    public byte[] ToOriginForm()
    {
        var builder = new StringBuilder().Append(Method).Append(' ').Append(PathAndQuery).Append(" HTTP/1.1\r\n");
        builder.Append("Host: ").Append(Authority).Append("\r\n");
        foreach (var (name, value) in Headers.Where(h => Forwards(h.Name)))
        {
            if (IsHttp10 && name.Equals("Expect", StringComparison.OrdinalIgnoreCase))
            {
                var others = FieldSyntax.ListMembers(value)
                    .Where(e => !e.Equals("100-continue", StringComparison.OrdinalIgnoreCase)).ToArray();
                if (others.Length > 0)
                {
                    builder.Append(name).Append(": ").Append(string.Join(", ", others)).Append("\r\n");
                }
                continue;
            }
            if (name.Equals("Max-Forwards", StringComparison.OrdinalIgnoreCase) && MaxForwards is > 0 and var forwards)
            {
                // RFC 9110 §7.6.2: one intermediary fewer may forward it after this one.
                builder.Append(name).Append(": ").Append((forwards - 1).ToString(CultureInfo.InvariantCulture)).Append("\r\n");
                continue;
            }
            builder.Append(name).Append(": ").Append(value).Append("\r\n");
        }
        if (Framing == BodyFraming.Length)
        {
            // One value, as this proxy read it (repeated or listed equal values become one).
            builder.Append("Content-Length: ").Append(ContentLength.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
        }
        if (AcceptsTrailers)
        {
            builder.Append("TE: trailers\r\nConnection: TE, close\r\n\r\n");
        }
        else
        {
            builder.Append("Connection: close\r\n\r\n");
        }
        // The request line and Host are visible ASCII (TryAbsoluteForm), the field values one character per byte.
        return Encoding.Latin1.GetBytes(builder.ToString());
    }
}
