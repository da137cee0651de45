using System.Text;
using System.Text.RegularExpressions;
using Passage.Client;
using Passage.Client.HttpProxy;
using Passage.Configuration;
using Passage.Http;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Client;

/// <summary>
/// Bounded random mutation with fixed seeds of the request heads the local HTTP proxy reads (CONNECT, and absolute-form
/// <c>http://</c>): parsing never throws; a head accepted names a destination the relay reads as it is, and goes on to the
/// origin as a well-formed HTTP/1.1 origin-form head without this hop's fields; a head refused carries a reason the proxy
/// answers with a status and a Proxy-Status.
/// </summary>
public sealed partial class ProxyRequestHeadFuzzTests
{
    private const int Seed = 20_261_208;
    private const int Mutations = 20_000;
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(60);

    // Bytes that matter to the grammar: separators, line ends, what a host or a field may not hold, and non-ASCII.
    internal static readonly byte[] Interesting = Encoding.Latin1.GetBytes(" \t\r\n:[]@/?#%,.0123456789\u0000\u007f\u00ff\u00c3-_*");

    private static readonly string[] Corpus =
    [
        "CONNECT origin.test:443 HTTP/1.1\r\nHost: origin.test:443\r\nProxy-Authorization: Basic YTpi\r\n\r\n",
        "CONNECT [2001:db8::1]:8443 HTTP/1.0\r\nUser-Agent: fuzz\r\n\r\n",
        "CONNECT 192.0.2.7:1 HTTP/1.1\r\nHost: 192.0.2.7:1\r\nContent-Length: 0\r\n\r\n",
        "GET http://origin.test/path?q=1 HTTP/1.1\r\nHost: elsewhere\r\nConnection: keep-alive, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: 5\r\n"
            + "Proxy-Connection: keep-alive\r\nTE: trailers\r\nUpgrade: h2c\r\nAccept: */*\r\n\r\n",
        "POST http://Origin.Test.:8080/up HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\nProxy-Authorization: Bearer t\r\n\r\n",
        "POST http://[::1]:81/x HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\nTrailer: X-T\r\n\r\n",
        "OPTIONS http://origin.test HTTP/1.1\r\nMax-Forwards: 3\r\n\r\n",
        "GET http://origin.test:/?a HTTP/1.0\r\nExpect: 100-continue, x-other\r\nProxy-Authorization: Bearer t\r\n\r\n",
        "TRACE http://origin.test/ HTTP/1.1\r\nX-Text: h\u00e9llo\tworld\r\nmax-forwards: 1\r\n\r\n",
    ];

    /// <summary>The fields this hop keeps to itself (RFC 9110 §7.6.1, §11.7): never in what the origin is sent as the application sent them.</summary>
    private static readonly string[] ThisHop = ["Proxy-Authorization", "Proxy-Authenticate", "Proxy-Connection", "Keep-Alive", "Upgrade"];

    [Fact]
    public async Task Mutated_heads_never_throw_and_what_is_accepted_goes_on_well_formed()
    {
        var seen = new HashSet<string>();
        await Task.Run(() =>
        {
            foreach (var head in Corpus)
            {
                Assert.NotNull(Check(Encoding.UTF8.GetBytes(head), "corpus"));
            }

            var random = new Random(Seed);
            for (var i = 0; i < Mutations; i++)
            {
                var original = Encoding.UTF8.GetBytes(Corpus[random.Next(Corpus.Length)]);
                var mutated = ByteMutations.Mutate(original, random, Interesting);
                var head = Check(mutated, $"seed {Seed}, mutation {i}: {Convert.ToHexString(mutated)}");
                seen.Add(head is null ? "refused" : head.IsConnect ? "CONNECT" : head.Framing.ToString());
            }
        }).WaitAsync(Bound);

        // The mutations must reach both kinds of head, every framing, and refusals, or the fuzz is not exploring.
        Assert.Superset(new HashSet<string> { "refused", "CONNECT", nameof(BodyFraming.None), nameof(BodyFraming.Length), nameof(BodyFraming.Chunked) }, seen);
    }

    /// <summary>Hosts at the edge of what a relay reads (see <see cref="An_edge_host_is_refused_or_one_the_relay_reads"/>).</summary>
    internal static readonly string[] EdgeHostNames = [".", "..", "a..b", "-a", "d92.0.2.7", "0x7f.1", "origin.test."];

    public static TheoryData<string> EdgeHosts => new(EdgeHostNames);

    /// <summary>
    /// Hosts at the edge of what a relay reads, which random edits seldom make: a name of dots alone (empty once its
    /// trailing dot is dropped), an empty label, a label starting with a hyphen, a numeric last label that is no address.
    /// Each is refused with the head, or read by the relay as it is.
    /// </summary>
    [Theory]
    [MemberData(nameof(EdgeHosts))]
    public void An_edge_host_is_refused_or_one_the_relay_reads(string host)
    {
        Check(Encoding.ASCII.GetBytes($"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n"), $"CONNECT {host}");
        Check(Encoding.ASCII.GetBytes($"GET http://{host}/ HTTP/1.1\r\n\r\n"), $"GET http://{host}/");
        Check(Encoding.ASCII.GetBytes($"GET http://{host}:8080?q HTTP/1.1\r\n\r\n"), $"GET http://{host}:8080?q");
    }

    /// <summary>Parses <paramref name="bytes"/> and checks what comes of it: the head, or null when it was refused.</summary>
    private static ProxyRequestHead? Check(byte[] bytes, string context)
    {
        ProxyRequestHead? head;
        RefusalReason refusal;
        string? error;
        byte[] origin;
        try
        {
            head = ProxyRequestHead.Parse(bytes, out refusal, out error);
            origin = head is { IsConnect: false } ? head.ToOriginForm() : [];
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new Xunit.Sdk.XunitException($"{context}: {e}");
        }
        if (head is null)
        {
            // A refusal has a reason the proxy answers with a status and says why in Proxy-Status.
            Assert.True(refusal is RefusalReason.MalformedRequest or RefusalReason.UnsupportedVersion, $"{context}: {refusal}");
            Assert.False(string.IsNullOrEmpty(error), context);
            var answer = Encoding.Latin1.GetString(HttpProxySession.Answer(refusal, error).Span);
            Assert.Matches(@"^HTTP/1\.1 (400|505) ", answer);
            Assert.Contains("\r\nProxy-Status: ", answer, StringComparison.Ordinal);
            return null;
        }

        // The destination is one the relay reads as it is, so that ConnectAsync refuses nothing the parse let through.
        Assert.True(head.Host.Length > 0 && PassageClient.AsRelaysRead(head.Host, head.Port) is not null, $"{context}: host '{head.Host}' port {head.Port}");
        Assert.InRange(head.Port, 1, 65535);
        if (head.IsConnect)
        {
            return head;
        }

        // The Host the origin gets names the same destination.
        var authority = Encoding.ASCII.GetBytes(head.Authority);
        Assert.True(ConnectTarget.TryParseAuthority(authority, out var host, out var port, out _), $"{context}: authority '{head.Authority}'");
        Assert.Equal(head.Host, HostPort.Normalize(Encoding.ASCII.GetString(authority[host])));
        Assert.Equal(head.Port, port == 0 ? 80 : port);
        CheckOriginForm(head, Encoding.Latin1.GetString(origin), context);
        return head;
    }

    /// <summary>
    /// The head sent to the origin reads again as an HTTP/1.1 origin-form request head (RFC 9112 §3): the same method and
    /// path, field lines of a token, a colon and a value with no CR or LF in it, one Host, and nothing of this hop's.
    /// </summary>
    private static void CheckOriginForm(ProxyRequestHead head, string text, string context)
    {
        Assert.EndsWith("\r\n\r\n", text, StringComparison.Ordinal);
        var lines = text[..^4].Split("\r\n");
        Assert.DoesNotContain(lines, l => l.Contains('\r', StringComparison.Ordinal) || l.Contains('\n', StringComparison.Ordinal) || l.Length == 0);
        var requestLine = RequestLine().Match(lines[0]);
        Assert.True(requestLine.Success, $"{context}: request line '{lines[0]}'");
        Assert.Equal(head.Method, requestLine.Groups[1].Value);
        Assert.Equal(head.PathAndQuery, requestLine.Groups[2].Value);
        Assert.True(requestLine.Groups[2].Value != "*" || head.Method == "OPTIONS", context);

        var fields = lines[1..].Select(l => FieldSyntax.ParseLine(l) ?? throw new Xunit.Sdk.XunitException($"{context}: field line '{l}'")).ToList();
        Assert.Equal([head.Authority], fields.Where(f => f.Key.Equals("Host", StringComparison.OrdinalIgnoreCase)).Select(f => f.Value));
        Assert.True(fields.Count(f => f.Key.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) == (head.Framing == BodyFraming.Length ? 1 : 0), context);

        // Connection and TE are this proxy's own, last; whatever the application named in its Connection stayed behind.
        var named = MessageFields.ConnectionOptions(head.Headers);
        var own = head.AcceptsTrailers ? new[] { "TE: trailers", "Connection: TE, close" } : ["Connection: close"];
        Assert.Equal(own, lines[^own.Length..]);
        foreach (var (name, _) in fields.SkipLast(own.Length).Select(f => (f.Key, f.Value)))
        {
            Assert.False(ThisHop.Contains(name, StringComparer.OrdinalIgnoreCase) || name.Equals("Connection", StringComparison.OrdinalIgnoreCase)
                || name.Equals("TE", StringComparison.OrdinalIgnoreCase) || (named.Contains(name) && !name.Equals("Host", StringComparison.OrdinalIgnoreCase)),
                $"{context}: '{name}' went on to the origin");
        }
    }

    /// <summary>An origin-form (or, for OPTIONS, asterisk-form) HTTP/1.1 request line: a token, a path of visible ASCII.</summary>
    [GeneratedRegex(@"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (/[!-~]*|\*) HTTP/1\.1$")]
    private static partial Regex RequestLine();
}
