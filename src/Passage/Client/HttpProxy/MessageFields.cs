using System.Globalization;
using Passage.Http;

namespace Passage.Client.HttpProxy;

/// <summary>
/// What the local HTTP proxy reads in the fields of the messages it forwards, requests and answers alike: which fields are
/// this hop's (never forwarded), and how the body is framed.
/// </summary>
internal static class MessageFields
{
    /// <summary>
    /// This proxy's departures from the hop-by-hop core (<see cref="HopByHop"/>). Transfer-Encoding goes on, since the body
    /// passes on byte for byte in the framing it came in (the tunnel writes framing of its own instead). What the
    /// application and this proxy exchange stays here too: its credentials and challenges (RFC 9110 §11.7). Trailer goes
    /// on, end to end (RFC 9110 §6.6.2), as the trailer fields it announces do: a chunked body passes with its trailer
    /// section (less this hop's fields and those no trailer section may carry, <see cref="FramedBody"/>).
    /// </summary>
    private static readonly HashSet<string> ThisHop = new(StringComparer.OrdinalIgnoreCase) { "Proxy-Authorization", "Proxy-Authenticate" };

    /// <summary>The fields the message's framing and destination are read from: never dropped on Connection's say-so.</summary>
    private static readonly HashSet<string> FramingFields = new(StringComparer.OrdinalIgnoreCase) { "Content-Length", "Transfer-Encoding", "Host" };

    /// <summary>The field names a message's Connection fields list: that hop's too (RFC 9110 §7.6.1).</summary>
    public static HashSet<string> ConnectionOptions(IEnumerable<(string Name, string Value)> fields) => HopByHop
        .ConnectionOptions(fields.Where(h => h.Name.Equals("Connection", StringComparison.OrdinalIgnoreCase)).Select(h => h.Value))
        .ToHashSet(StringComparer.OrdinalIgnoreCase);

    /// <summary>Whether a field goes on past this hop: not a hop-by-hop field, nor one the message's Connection names (<paramref name="connectionOptions"/>).</summary>
    public static bool Forwards(string name, HashSet<string> connectionOptions) =>
        (!HopByHop.IsCore(name) || name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
        && !ThisHop.Contains(name) && !connectionOptions.Contains(name);

    /// <summary>The transfer codings of a message: every member of its Transfer-Encoding fields, in order.</summary>
    public static IEnumerable<string> TransferCodings(IEnumerable<(string Name, string Value)> fields) => fields
        .Where(f => f.Name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
        .SelectMany(f => FieldSyntax.ListMembers(f.Value));

    /// <summary>
    /// How the message's body is delimited (RFC 9112 §6.3); false, with why, when the fields do not say so unambiguously:
    /// Content-Length beside Transfer-Encoding, Content-Length values that differ, Transfer-Encoding in HTTP/1.0, chunked
    /// other than once and last in a request, or a Connection that names a field the framing is read from (the next hop
    /// would get the message without it). An answer whose Transfer-Encoding does not end in chunked lasts until the
    /// origin closes (<paramref name="response"/>).
    /// </summary>
    public static bool TryFraming(
        IEnumerable<(string Name, string Value)> fields, string version, bool response, out BodyFraming framing, out long contentLength, out string? error)
    {
        framing = BodyFraming.None;
        contentLength = 0;
        error = null;
        var codings = new List<string>();
        var transferEncoding = false;
        long? length = null;
        foreach (var (name, value) in fields)
        {
            if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)
                && HopByHop.ConnectionOptions([value]).Any(FramingFields.Contains))
            {
                error = "Connection names Content-Length, Transfer-Encoding or Host";
                return false;
            }
            if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase))
            {
                transferEncoding = true;
                codings.AddRange(FieldSyntax.ListMembers(value));
            }
            else if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase))
            {
                foreach (var item in value.Split(',', StringSplitOptions.TrimEntries))
                {
                    // Digits only (no sign, no spaces inside), and every value the same (RFC 9110 §8.6).
                    if (item.Length is 0 or > 18 || !item.All(char.IsAsciiDigit)
                        || long.Parse(item, CultureInfo.InvariantCulture) is var number && length is { } seen && seen != number)
                    {
                        error = "Content-Length is not one non-negative number";
                        return false;
                    }
                    length = number;
                }
            }
        }
        if (transferEncoding)
        {
            if (length is not null)
            {
                error = "both Content-Length and Transfer-Encoding";
                return false;
            }
            if (version == "HTTP/1.0")
            {
                // RFC 9112 §6.1: an HTTP/1.0 recipient may not know it.
                error = "Transfer-Encoding in an HTTP/1.0 message";
                return false;
            }
            var chunked = codings.Count(c => c.Equals("chunked", StringComparison.OrdinalIgnoreCase));
            if (codings.Count > 0 && codings[^1].Equals("chunked", StringComparison.OrdinalIgnoreCase) && chunked == 1)
            {
                framing = BodyFraming.Chunked;
                return true;
            }
            if (response && codings.Count > 0 && chunked == 0)
            {
                // RFC 9112 §6.3: an answer whose last coding is not chunked ends when the connection does.
                framing = BodyFraming.UntilClose;
                return true;
            }
            error = "Transfer-Encoding does not end in chunked, once";
            return false;
        }
        if (length is { } n)
        {
            framing = BodyFraming.Length;
            contentLength = n;
        }
        else if (response)
        {
            // RFC 9112 §6.3: an answer with neither ends when the connection does.
            framing = BodyFraming.UntilClose;
        }
        return true;
    }
}
