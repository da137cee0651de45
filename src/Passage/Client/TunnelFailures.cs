namespace Passage.Client;

/// <summary>
/// Reading a relay's refusal, which failures are worth trying another relay for, and which of those are the relay's
/// own (it is then taken for down).
/// </summary>
public static class TunnelFailures
{
    /// <summary>
    /// True when the failure was the relay's, not the destination's nor this client's: another relay may well succeed,
    /// and this one is taken for down.
    /// </summary>
    public static bool IsRelayFault(this TunnelFailure failure) =>
        failure is TunnelFailure.RelayUnavailable or TunnelFailure.PinMismatch or TunnelFailure.RelayBusy or TunnelFailure.RelayError;

    /// <summary>
    /// True when another relay may well succeed: the relay's own failure (<see cref="IsRelayFault"/>), or its refusal of
    /// this client's credentials (407: relays run by different operators, a token rotated at one), which leaves it up.
    /// </summary>
    public static bool TriesAnotherRelay(this TunnelFailure failure) =>
        failure.IsRelayFault() || failure == TunnelFailure.AuthenticationRequired;

    /// <summary>
    /// Of two failures at different relays, the one that tells the application more, <paramref name="next"/> on a
    /// tie: a credentials refusal (407) over a relay's own failure, which says only that one relay could not be used.
    /// (A destination's failure ends the search: it is always the one reported.)
    /// </summary>
    internal static bool TellsMoreThan(this TunnelFailure next, TunnelFailure kept) =>
        !(kept == TunnelFailure.AuthenticationRequired && next.IsRelayFault());

    /// <summary>
    /// True when a relay's answer to a tunnel request opens the tunnel: any 2xx (RFC 9110 §9.3.6; RFC 8441 §5 and RFC 9220
    /// for extended CONNECT), not only 200. Such an answer has no body: what follows it is the tunnel's.
    /// </summary>
    internal static bool OpensTunnel(int status) => status is >= 200 and < 300;

    /// <summary>
    /// Maps a relay's answer (status and the <c>error=</c> of its Proxy-Status, RFC 9209) to a failure. What the
    /// Proxy-Status says of the destination wins over a 503 (a proxy may answer a refused connection so); a 502
    /// without it is a failure beyond the relay, unnamed; any other answer says nothing of the destination (a redirect,
    /// a 404, a 500, an unreadable status line) and is the relay's own.
    /// </summary>
    public static TunnelFailure FromAnswer(int status, string? proxyStatus)
    {
        var error = ErrorType(proxyStatus);
        return (status, error) switch
        {
            (400, _) => TunnelFailure.InvalidRequest,
            (407, _) => TunnelFailure.AuthenticationRequired,
            (403, _) => TunnelFailure.DestinationDenied,
            (504, _) => TunnelFailure.Timeout,
            (_, "dns_error") or (_, "destination_not_found") => TunnelFailure.DnsError,
            (_, "dns_timeout") => TunnelFailure.Timeout,
            (_, "connection_refused") => TunnelFailure.ConnectionRefused,
            (_, "destination_ip_unroutable") or (_, "destination_unavailable") => TunnelFailure.Unreachable,
            (_, "connection_timeout") => TunnelFailure.Timeout,
            (_, "destination_ip_prohibited") or (_, "http_request_denied") => TunnelFailure.DestinationDenied,
            (503, _) => TunnelFailure.RelayBusy,
            (502, _) => TunnelFailure.Other,
            _ => TunnelFailure.RelayError,
        };
    }

    /// <summary>What <paramref name="failure"/> means, for a person (an application's answer names it so).</summary>
    public static string Describe(this TunnelFailure failure) => failure switch
    {
        TunnelFailure.RelayUnavailable => "no relay could be reached or answered in time",
        TunnelFailure.PinMismatch => "the relay did not present its pinned key",
        TunnelFailure.RelayBusy => "the relay is at its tunnel limit or stopping",
        TunnelFailure.AuthenticationRequired => "the relay refused this client's credentials",
        TunnelFailure.DestinationDenied => "the relay does not allow this destination",
        TunnelFailure.DnsError => "the destination's name did not resolve at the relay",
        TunnelFailure.ConnectionRefused => "the destination refused the connection",
        TunnelFailure.Unreachable => "the destination could not be reached from the relay",
        TunnelFailure.Timeout => "the relay timed out reaching the destination",
        TunnelFailure.InvalidRequest => "the relay found the request malformed",
        TunnelFailure.Other => "the relay could not reach the destination",
        _ => "the relay answered what this client cannot pass on",
    };

    /// <summary>
    /// The <c>details</c> parameter of a Proxy-Status value (RFC 9209 §2.1.5, an RFC 8941 sf-string, unescaped), or
    /// null when there is none or it is not a well-formed string.
    /// </summary>
    public static string? DetailsOf(string? proxyStatus)
    {
        const string Key = "details=\"";
        var at = proxyStatus?.IndexOf(Key, StringComparison.Ordinal) ?? -1;
        // A parameter's own name, not the end of another's ("xdetails=").
        while (at > 0 && proxyStatus![at - 1] is not (';' or ' ' or '\t'))
        {
            at = proxyStatus.IndexOf(Key, at + 1, StringComparison.Ordinal);
        }
        if (at < 0)
        {
            return null;
        }
        var text = new System.Text.StringBuilder();
        for (var i = at + Key.Length; i < proxyStatus!.Length; i++)
        {
            var c = proxyStatus[i];
            if (c == '"')
            {
                return text.ToString();
            }
            if (c == '\\')
            {
                // Only \\ and \" are escapes (RFC 8941 §3.3.3).
                if (++i == proxyStatus.Length || proxyStatus[i] is not ('\\' or '"'))
                {
                    return null;
                }
                c = proxyStatus[i];
            }
            else if (c is < ' ' or > '~')
            {
                return null;
            }
            text.Append(c);
        }
        return null;
    }

    /// <summary>The <c>error</c> parameter of a Proxy-Status value, or null.</summary>
    public static string? ErrorType(string? proxyStatus)
    {
        if (proxyStatus is null)
        {
            return null;
        }
        foreach (var part in proxyStatus.Split(';'))
        {
            var trimmed = part.Trim();
            if (trimmed.StartsWith("error=", StringComparison.Ordinal))
            {
                return trimmed["error=".Length..].Trim('"');
            }
        }
        return null;
    }
}
