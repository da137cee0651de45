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
/// Each end is an intermediary of its own: the client end receives the application's HTTP/1.1 and the server end the
/// link's HTTP/2, and both forward, so a request reaches the backend with two Via entries and Max-Forwards two less, and
/// <c>Max-Forwards: 1</c> asks the server end. The pseudonym is drawn at random when the end starts (<c>passage-</c>
/// and 8 hex digits): it names no host, address or port, nor the end's node ID, and nothing of the application. What it
/// tells the next hop is that the request passed a Passage end, and which requests passed the same one since it started.
/// Being this end's alone, it detects a loop honestly: another end, or a request that merely went through another tunnel,
/// never carries it (unless its sender copied it there, and then the sender is answered what it asked for).
/// </remarks>
internal sealed class Intermediary(string end, string pseudonym, ILogger logger)
{
    /// <summary>This end's name in Via.</summary>
    public string Pseudonym { get; } = pseudonym;

    /// <summary>An intermediary named anew, for the end called <paramref name="end"/> (in answers and logs: "client end").</summary>
    public static Intermediary Create(string end, ILogger logger) =>
        new(end, "passage-" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), logger);

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
        if (Names(request.Headers.Via, Pseudonym))
        {
            TunnelLog.LoopDetectedRationed(logger, end, Pseudonym);
            await MessageCopy.RefuseAsync(context, HttpStatusCode.BadGateway,
                new TunnelFailure("proxy_loop_detected", $"the request came round to the {end} again: its Via names {Pseudonym}")).ConfigureAwait(false);
            return true;
        }
        if (MaxForwards.Remaining(request.Method, request.Headers.MaxForwards) != 0)
        {
            return false;
        }
        if (HttpMethods.IsOptions(request.Method))
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.OK,
                new TunnelFailure("proxy_internal_response", $"Max-Forwards is 0: answered by the {end}")).ConfigureAwait(false);
        }
        else
        {
            await MessageCopy.RefuseAsync(context, HttpStatusCode.MethodNotAllowed,
                new TunnelFailure("http_request_denied", $"Max-Forwards is 0, and the {end} does not echo TRACE"), allow: "OPTIONS").ConfigureAwait(false);
        }
        return true;
    }

    /// <summary>
    /// Gives <paramref name="message"/>, forwarded from <paramref name="request"/>, this end's Via entry after those it came
    /// with (the protocol this end received it in, then the pseudonym), and an OPTIONS or TRACE its Max-Forwards one less
    /// (<see cref="AnsweredHereAsync"/> has answered one of 0).
    /// </summary>
    public void Stamp(HttpRequest request, HttpRequestMessage message)
    {
        message.Headers.TryAddWithoutValidation("Via", $"{ReceivedProtocol(request.Protocol)} {Pseudonym}");
        if (MaxForwards.Remaining(request.Method, request.Headers.MaxForwards) is > 0 and var remaining)
        {
            message.Headers.Remove(MaxForwards.Name);
            message.Headers.TryAddWithoutValidation(MaxForwards.Name, (remaining - 1).ToString(CultureInfo.InvariantCulture));
        }
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
            if (value is not null && (Names(value, pseudonym, comments: true, out var closed) || (!closed && Names(value, pseudonym, comments: false, out _))))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>
    /// Whether a member of the one field value <paramref name="value"/> is received by <paramref name="pseudonym"/>; with
    /// <paramref name="comments"/>, a comma inside a comment does not end a member, and <paramref name="closed"/> says
    /// whether every comment was closed by the value's end (without, it is true).
    /// </summary>
    private static bool Names(string value, string pseudonym, bool comments, out bool closed)
    {
        var depth = 0;
        var start = 0;
        for (var i = 0; i <= value.Length; i++)
        {
            if (i == value.Length || (value[i] == ',' && depth == 0))
            {
                if (ReceivedBy(value.AsSpan(start, i - start)).Equals(pseudonym, StringComparison.OrdinalIgnoreCase))
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
