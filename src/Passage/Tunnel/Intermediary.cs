using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Primitives;
using Passage.Http;

namespace Passage.Tunnel;

/// <summary>
/// What one end of the tunnel does as an HTTP intermediary (RFC 9110 §7.6) with each request it forwards: it adds its
/// own Via entry, under a pseudonym (§7.6.3); it refuses a request whose Via already names that pseudonym, which has come
/// round to this end again, instead of sending it round once more; and it answers an OPTIONS or TRACE whose Max-Forwards
/// is 0 itself, forwarding one with more with one less (§7.6.2).
/// </summary>
/// <remarks>
/// <para>
/// Each end is an intermediary of its own: the client end receives the application's HTTP/1.1 and the server end the
/// link's HTTP/2, and both forward, so a request reaches the backend with Max-Forwards two less, and
/// <c>Max-Forwards: 1</c> asks the server end. The pseudonym is drawn at random when the end starts (<c>passage-</c>
/// and 8 hex digits): it names no host, address or port, nor the end's node ID, and nothing of the application.
/// </para>
/// <para>
/// The backend sees the tunnel as one intermediary, the server end: the server end puts its own entry in place of the
/// one its peer appended, keeping the protocol the application spoke, which that entry recorded. Where several client
/// ends share a server end, their pseudonyms would tell the backend which requests came from the same one (the same
/// site or team), which it has no need to know. The client end names its entry in <see cref="TunnelHeaders.Via"/>, which only
/// the ends exchange (an application's is removed): a client end from before Via sends none, and then nothing is taken
/// away, where a last entry that merely looked like an end's could be an earlier tunnel's, or, in a loop through such a
/// client end, this end's own, and the loop would go round unseen.
/// </para>
/// <para>
/// Loops are still seen: the entry that leaves the server end is its own, so every loop, which passes some server end
/// twice, reaches one that finds itself named. The peer's entry is never counted as this end's, so the two ends drawing
/// the same pseudonym (once in 2^32 starts) does not make every request a loop. Being an end's alone, a pseudonym
/// detects a loop honestly: another end, or a request that merely went through another tunnel, never carries it
/// (unless its sender copied it there, and then the sender is answered what it asked for).
/// </para>
/// </remarks>
internal sealed class Intermediary(bool serverEnd, string pseudonym, ILogger logger)
{
    private readonly string _end = serverEnd ? "server end" : "client end";

    /// <summary>This end's name in Via.</summary>
    public string Pseudonym { get; } = pseudonym;

    /// <summary>
    /// An intermediary for the server end (<paramref name="serverEnd"/>) or the client end, named <paramref name="pseudonym"/>
    /// when given (a test's choice), else anew.
    /// </summary>
    public static Intermediary Create(bool serverEnd, ILogger logger, string? pseudonym = null) =>
        new(serverEnd, pseudonym ?? "passage-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), logger);

    /// <summary>
    /// Answers the request here when it is to go no further, and returns whether it did: one that has been through this end
    /// before gets 502 with <c>proxy_loop_detected</c> (RFC 9209 §2.3.32); an OPTIONS whose Max-Forwards is 0 gets 200,
    /// this end being its final recipient, with <c>proxy_internal_response</c> naming the end that answered; such a TRACE
    /// gets 405 with <c>http_request_denied</c>, as no end echoes a request (whose fields may hold credentials, RFC 9110
    /// §9.3.8), and <c>Allow: OPTIONS</c>, what an end answers itself.
    /// </summary>
    public async Task<bool> AnsweredHereAsync(HttpContext context)
    {
        var request = context.Request;
        if (CameRound(request.Headers))
        {
            TunnelLog.LoopDetectedRationed(logger, _end, Pseudonym);
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadGateway,
                new TunnelFailure("proxy_loop_detected", $"the request came round to the {_end} again: its Via names {Pseudonym}")).ConfigureAwait(false);
            return true;
        }
        if (MaxForwards.Remaining(request.Method, request.Headers.MaxForwards) != 0)
        {
            return false;
        }
        if (HttpMethods.IsOptions(request.Method))
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.OK,
                new TunnelFailure("proxy_internal_response", $"Max-Forwards is 0: answered by the {_end}")).ConfigureAwait(false);
        }
        else
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.MethodNotAllowed,
                new TunnelFailure("http_request_denied", $"Max-Forwards is 0, and the {_end} does not echo TRACE"), allow: "OPTIONS").ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>
    /// Gives <paramref name="message"/>, forwarded from <paramref name="request"/>, this end's Via entry after those it came
    /// with (the protocol this end received it in, then the pseudonym), and an OPTIONS or TRACE its Max-Forwards one less
    /// (<see cref="AnsweredHereAsync"/> has answered one of 0). The client end names its entry to the server end in
    /// <see cref="TunnelHeaders.Via"/>; the server end writes its entry in place of the one so named, with the protocol that one
    /// recorded.
    /// </summary>
    public void Stamp(HttpRequest request, HttpRequestMessage message)
    {
        if (!serverEnd)
        {
            message.Headers.TryAddWithoutValidation(TunnelHeaders.Via, Pseudonym);
        }
        if (serverEnd && PeerEntry(request.Headers, out var before, out var protocol))
        {
            // The entries before the peer's, as they came: whole field lines, then what the last one held before it.
            var via = request.Headers.Via;
            message.Headers.Remove("Via");
            for (var i = 0; i < via.Count - 1; i++)
            {
                message.Headers.TryAddWithoutValidation("Via", via[i]);
            }
            if (!before.IsWhiteSpace())
            {
                message.Headers.TryAddWithoutValidation("Via", before.TrimEnd(" \t").ToString());
            }
            message.Headers.TryAddWithoutValidation("Via", $"{protocol} {Pseudonym}");
        }
        else
        {
            message.Headers.TryAddWithoutValidation("Via", $"{ReceivedProtocol(request.Protocol)} {Pseudonym}");
        }
        if (MaxForwards.Remaining(request.Method, request.Headers.MaxForwards) is > 0 and var remaining)
        {
            message.Headers.Remove(MaxForwards.Name);
            message.Headers.TryAddWithoutValidation(MaxForwards.Name, (remaining - 1).ToString(CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Whether the request's Via names this end: at the server end, among the entries before its peer's (<see cref="PeerEntry"/>),
    /// which, named by the peer, is never this end's even when the two drew the same pseudonym.
    /// </summary>
    private bool CameRound(IHeaderDictionary headers)
    {
        var via = headers.Via;
        if (serverEnd && PeerEntry(headers, out var before, out _))
        {
            for (var i = 0; i < via.Count - 1; i++)
            {
                if (ValueNames(via[i], Pseudonym))
                {
                    return true;
                }
            }
            return ValueNames(before, Pseudonym);
        }
        return Names(via, Pseudonym);
    }

    /// <summary>
    /// Finds the Via entry the client end appended, which <see cref="TunnelHeaders.Via"/> names: the last member of the last field
    /// line, after its last comma, as the client end's own entry holds none. Gives what that line held before it in
    /// <paramref name="before"/> and the entry's received-protocol in <paramref name="protocol"/>. False when the request
    /// names no such entry (a client end from before Via), or its last entry is not the one named.
    /// </summary>
    private static bool PeerEntry(IHeaderDictionary headers, out ReadOnlySpan<char> before, out ReadOnlySpan<char> protocol)
    {
        before = protocol = [];
        var via = headers.Via;
        if (headers[TunnelHeaders.Via] is not [{ Length: > 0 } peer] || via.Count == 0 || via[via.Count - 1] is not { } last)
        {
            return false;
        }
        var comma = last.LastIndexOf(',');
        var member = last.AsSpan(comma + 1).Trim(" \t");
        if (!ReceivedBy(member).Equals(peer, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }
        before = comma < 0 ? [] : last.AsSpan(0, comma);
        protocol = member[..member.IndexOfAny(' ', '\t')];
        return true;
    }

    /// <summary>A request's protocol as Via's received-protocol writes it (RFC 9110 §7.6.3): <c>1.1</c>, <c>2</c>, the name left out for HTTP.</summary>
    private static string ReceivedProtocol(string protocol) =>
        protocol.StartsWith("HTTP/", StringComparison.Ordinal) ? protocol["HTTP/".Length..] : protocol;

    /// <summary>
    /// Whether one of the Via entries in <paramref name="via"/> was received by <paramref name="pseudonym"/>: the second
    /// word of a list member (<c>received-protocol RWS received-by [ RWS comment ]</c>); commas inside a comment, which
    /// may nest and quote, do not end a member.
    /// </summary>
    /// <remarks>
    /// A field value whose comments are not all closed is read again with every comma ending a member. The entries the
    /// ends add come after the application's in the one field each end forwards, so a comment the application left open
    /// took them in: its request went round until its growing Via passed a head bound, as if there were no check.
    /// </remarks>
    internal static bool Names(StringValues via, string pseudonym)
    {
        foreach (var value in via)
        {
            if (ValueNames(value, pseudonym))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Whether a member of the one field value <paramref name="value"/> is received by <paramref name="pseudonym"/>, read as <see cref="Names(StringValues, string)"/> reads each.</summary>
    private static bool ValueNames(ReadOnlySpan<char> value, string pseudonym) =>
        Names(value, pseudonym, comments: true, out var closed) || (!closed && Names(value, pseudonym, comments: false, out _));

    /// <summary>
    /// Whether a member of the one field value <paramref name="value"/> is received by <paramref name="pseudonym"/>; with
    /// <paramref name="comments"/>, a comma inside a comment does not end a member, and <paramref name="closed"/> says
    /// whether every comment was closed by the value's end (without, it is true).
    /// </summary>
    private static bool Names(ReadOnlySpan<char> value, string pseudonym, bool comments, out bool closed)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= value.Length; i++)
        {
            if (i == value.Length || (value[i] == ',' && depth == 0))
            {
                if (ReceivedBy(value[start..i]).Equals(pseudonym, StringComparison.OrdinalIgnoreCase))
                {
                    closed = true;
                    return true;
                }
                start = i + 1;
            }
            else if (!comments)
            {
                continue;
            }
            else if (value[i] == '\\' && depth > 0)
            {
                i++;
            }
            else if (value[i] == '(')
            {
                depth++;
            }
            else if (value[i] == ')' && depth > 0)
            {
                depth--;
            }
        }
        closed = depth == 0;
        return false;
    }

    /// <summary>The received-by of one Via list member: the word after its received-protocol, or nothing.</summary>
    private static ReadOnlySpan<char> ReceivedBy(ReadOnlySpan<char> member)
    {
        member = member.Trim(" \t");
        var space = member.IndexOfAny(' ', '\t');
        if (space < 0)
        {
            return [];
        }
        var rest = member[space..].TrimStart(" \t");
        var end = rest.IndexOfAny(' ', '\t');
        return end < 0 ? rest : rest[..end];
    }
}
