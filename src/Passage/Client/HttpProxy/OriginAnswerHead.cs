using System.Globalization;
using System.Text;
using Passage.Http;
using Passage.Relay.Connect;

namespace Passage.Client.HttpProxy;

/// <summary>
/// The head of an answer an origin gives to a request the local HTTP proxy forwarded: an interim one (1xx, RFC 9110
/// §15.2, such as 100 Continue or 103 Early Hints), which the final one follows, or the final one. It goes on to the
/// application as it came, less the fields that were this hop's (the hop-by-hop ones, the proxy challenges, those the
/// answer's Connection names: RFC 9110 §7.6.1), and a final one says <c>Connection: close</c>: the application's
/// connection ends with this answer, one request per tunnel, whatever the origin meant to do with its own. Its status
/// line carries this proxy's version, HTTP/1.1, whatever the origin's (RFC 9110 §6.2), to an HTTP/1.0 application too:
/// a server answers with the highest minor version it conforms to, and a 1.0 recipient reads it.
/// </summary>
/// <remarks>
/// <para>Read strictly, as a request head is: an HTTP/1.0 or 1.1 status line, field lines that are field lines, and a body
/// framing that is unambiguous (RFC 9112 §6.3). An answer the application could frame otherwise than this proxy does
/// is not passed on: the proxy finds where the answer ends by that framing.</para>
/// <para>To an HTTP/1.0 application (<paramref name="ToHttp10"/>) no Transfer-Encoding goes (RFC 9112 §6.1): a chunked body
/// reaches it without its framing, and ends when its connection does; nor Trailer, since no trailer section can
/// follow. A transfer coding other than chunked, which the application would have to undo unaware, is not passed on.</para>
/// </remarks>
internal sealed record OriginAnswerHead(
    int Status, string StatusLine, IReadOnlyList<(string Name, string Value, string Line)> Fields, BodyFraming Framing, long ContentLength, bool ToHttp10)
{
    /// <summary>True for a 1xx answer, which another follows.</summary>
    public bool IsInterim => Status < 200;

    /// <summary>Whether a field of this answer (its head's or its chunked body's trailer section's) goes on to the application.</summary>
    public bool Forwards(string name) =>
        MessageFields.Forwards(name, _options ??= MessageFields.ConnectionOptions(Fields.Select(f => (f.Name, f.Value))))
        && !(ToHttp10 && (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase) || name.Equals("Trailer", StringComparison.OrdinalIgnoreCase)));

    private HashSet<string>? _options;

    /// <summary>
    /// Parses a whole answer head (ending with the empty line). Null, with why, when it is not one this proxy passes on.
    /// </summary>
    /// <param name="head">The head's bytes.</param>
    /// <param name="request">
    /// The request it answers: a HEAD's answer has no body whatever its fields say (RFC 9110 §9.3.2), and an HTTP/1.0 one's
    /// comes without chunked framing.
    /// </param>
    /// <param name="error">Why the head is refused.</param>
    public static OriginAnswerHead? Parse(ReadOnlySpan<byte> head, ProxyRequestHead request, out string? error)
    {
        // Latin-1: one character per byte, so that a field value's obs-text goes on as it came.
        var lines = Encoding.Latin1.GetString(head).Split("\r\n");
        if (!TryStatusLine(lines[0], out var status, out error))
        {
            return null;
        }
        var fields = new List<(string, string, string)>();
        foreach (var line in lines.Skip(1).TakeWhile(l => l.Length > 0))
        {
            if (FieldSyntax.ParseLine(line) is not { } field)
            {
                error = "a field line of the origin's answer is malformed";
                return null;
            }
            fields.Add((field.Key, field.Value, line));
        }
        if (status == 101)
        {
            // The proxy never forwards Upgrade: a switch was not asked for (RFC 9110 §15.2.2).
            error = "the origin switched protocols unasked";
            return null;
        }
        var framing = BodyFraming.None;
        long length = 0;
        // RFC 9112 §6.3: no content after a 1xx, 204 or 304, nor in the answer to HEAD, whatever the fields say.
        if (status >= 200 && status is not 204 and not 304 && request.Method != "HEAD"
            && !MessageFields.TryFraming(fields.Select(f => (f.Item1, f.Item2)), lines[0][..8], response: true, out framing, out length, out error))
        {
            error = "the origin's answer: " + error;
            return null;
        }
        if (request.IsHttp10 && framing is BodyFraming.Chunked or BodyFraming.UntilClose
            && MessageFields.TransferCodings(fields.Select(f => (f.Item1, f.Item2))).Any(coding => !coding.Equals("chunked", StringComparison.OrdinalIgnoreCase)))
        {
            // Not asked for (of TE only "trailers" goes on, and not from HTTP/1.0, RFC 9110 §10.1.4), and an HTTP/1.0 application cannot be told of it.
            error = "the origin's answer: a transfer coding other than chunked, which an HTTP/1.0 application cannot be sent";
            return null;
        }
        return new OriginAnswerHead(status, lines[0], fields, framing, length, request.IsHttp10);
    }

    /// <summary>
    /// The head as the application gets it: the status line with this proxy's version and the origin's status and reason,
    /// the fields that go on (each line as it came), and on a final answer <c>Connection: close</c>. A body's length is
    /// written once, as this proxy read it, where its first Content-Length line was (RFC 9110 §8.6: a recipient that takes
    /// repeated or listed equal values as one replaces them by one before forwarding); as the request's is.
    /// </summary>
    public byte[] ToApplication()
    {
        var builder = new StringBuilder("HTTP/1.1").Append(StatusLine.AsSpan(8)).Append("\r\n");
        var lengthWritten = false;
        foreach (var (name, _, line) in Fields)
        {
            if (Framing == BodyFraming.Length && name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                if (!lengthWritten)
                {
                    builder.Append("Content-Length: ").Append(ContentLength.ToString(CultureInfo.InvariantCulture)).Append("\r\n");
                    lengthWritten = true;
                }
            }
            else if (Forwards(name))
            {
                builder.Append(line).Append("\r\n");
            }
        }
        if (!IsInterim)
        {
            builder.Append("Connection: close\r\n");
        }
        return Encoding.Latin1.GetBytes(builder.Append("\r\n").ToString());
    }

    /// <summary>
    /// RFC 9112 §4: <c>HTTP-version SP 3DIGIT SP [ reason-phrase ]</c>, the version 1.0 or 1.1; the reason phrase holds no
    /// control character but HTAB. (A status line without the space before an empty reason is taken too.)
    /// </summary>
    private static bool TryStatusLine(string line, out int status, out string? error)
    {
        status = 0;
        error = "the origin's answer does not start with an HTTP/1.1 status line";
        if (line.Length < 12 || line[8] != ' ' || (line.Length > 12 && line[12] != ' ')
            || Http1ConnectParser.ReadVersion(Encoding.Latin1.GetBytes(line[..8]), out _) != Http1ConnectParser.VersionVerdict.Supported
            || line.AsSpan(9, 3).ContainsAnyExceptInRange('0', '9') || line[9] == '0'
            || !FieldSyntax.IsValue(line.Length > 12 ? line[13..] : ""))
        {
            return false;
        }
        status = int.Parse(line.AsSpan(9, 3), System.Globalization.CultureInfo.InvariantCulture);
        error = null;
        return true;
    }
}
