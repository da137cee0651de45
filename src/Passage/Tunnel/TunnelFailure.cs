using System.Globalization;
using System.Net.Http;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Passage.Http;

namespace Passage.Tunnel;

/// <summary>Why the session is down or a request failed: an RFC 9209 error type and words for a human.</summary>
/// <param name="ErrorType">An RFC 9209 §2.3 error type, e.g. <c>connection_refused</c>.</param>
/// <param name="Details">What happened, for the <c>details</c> parameter and the log. Holds no request data.</param>
internal sealed record TunnelFailure(string ErrorType, string Details)
{
    /// <summary>The first attempt has not ended yet.</summary>
    public static TunnelFailure NotYetConnected { get; } = new("destination_unavailable", "the tunnel is connecting");

    /// <summary>
    /// The failure an exception from connecting or from an HTTP exchange stands for. The innermost cause
    /// decides: a refused socket is <c>connection_refused</c>, a failed TLS handshake <c>tls_protocol_error</c>
    /// (or <c>tls_certificate_error</c> when <paramref name="peerRefused"/> says our check refused the peer).
    /// </summary>
    public static TunnelFailure From(Exception exception, bool peerRefused = false)
    {
        if (peerRefused)
        {
            return new("tls_certificate_error", "the other end's certificate is not the expected peer's");
        }
        for (var e = exception; e is not null; e = e.InnerException)
        {
            switch (e)
            {
                case SocketException socket:
                    return socket.SocketErrorCode switch
                    {
                        SocketError.ConnectionRefused => new("connection_refused", "connection refused"),
                        SocketError.TimedOut => new("connection_timeout", "connecting timed out"),
                        SocketError.HostNotFound or SocketError.NoData or SocketError.TryAgain => new("dns_error", $"name not resolved ({socket.SocketErrorCode})"),
                        SocketError.HostUnreachable or SocketError.NetworkUnreachable => new("destination_ip_unroutable", socket.SocketErrorCode.ToString()),
                        SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown => new("connection_terminated", $"the connection was closed ({socket.SocketErrorCode})"),
                        _ => new("connection_terminated", socket.SocketErrorCode.ToString()),
                    };
                case AuthenticationException auth:
                    return new("tls_protocol_error", $"TLS handshake failed: {auth.Message}");
                case TimeoutException or OperationCanceledException:
                    return new("connection_timeout", "no answer in time");
                case HttpProtocolException protocol:
                    // A stream reset (or the connection's GOAWAY) with an error code: the HTTP client's words for it
                    // quote the code's name, which read as "the answer is malformed: 'INTERNAL_ERROR'".
                    return new("http_protocol_error", $"the request's stream was ended with {ErrorCodeName(protocol.ErrorCode)}");
            }
        }
        if (exception is HttpRequestException http)
        {
            return http.HttpRequestError switch
            {
                HttpRequestError.NameResolutionError => new("dns_error", "name not resolved"),
                HttpRequestError.ConnectionError => new("connection_refused", http.Message),
                HttpRequestError.SecureConnectionError => new("tls_protocol_error", http.Message),
                HttpRequestError.HttpProtocolError or HttpRequestError.InvalidResponse => new("http_protocol_error", WithoutQuotedBytes(http.Message)),
                HttpRequestError.ResponseEnded => new("connection_terminated", "the connection ended before the answer"),
                // The one limit of the HTTP client's that an answer can pass: the size of its head (RFC 9209 §2.3.14).
                HttpRequestError.ConfigurationLimitExceeded => new("http_response_header_section_size", $"the answer head is larger than {TunnelHeaders.MaxAnswerHeadBytes / 1024} KiB"),
                _ => new("connection_terminated", http.Message),
            };
        }
        return new("connection_terminated", exception.Message);
    }

    /// <summary>An HTTP/2 error code as RFC 9113 §7 names it, with its number; another (HTTP/3's) by its number.</summary>
    private static string ErrorCodeName(long code) => code switch
    {
        0x0 => "NO_ERROR (0x0)",
        0x1 => "PROTOCOL_ERROR (0x1)",
        0x2 => "INTERNAL_ERROR (0x2)",
        0x3 => "FLOW_CONTROL_ERROR (0x3)",
        0x4 => "SETTINGS_TIMEOUT (0x4)",
        0x5 => "STREAM_CLOSED (0x5)",
        0x6 => "FRAME_SIZE_ERROR (0x6)",
        0x7 => "REFUSED_STREAM (0x7)",
        0x8 => "CANCEL (0x8)",
        0x9 => "COMPRESSION_ERROR (0x9)",
        0xa => "CONNECT_ERROR (0xa)",
        0xb => "ENHANCE_YOUR_CALM (0xb)",
        0xc => "INADEQUATE_SECURITY (0xc)",
        0xd => "HTTP_1_1_REQUIRED (0xd)",
        _ => string.Create(CultureInfo.InvariantCulture, $"error code 0x{code:x}"),
    };

    /// <summary>The most characters of an answer's bytes that a failure's details show.</summary>
    private const int MaxQuoted = 32;

    /// <summary>
    /// The HTTP client's words for an answer it could not parse quote the answer's bytes (<c>Received an invalid header
    /// name: '...'.</c>), which the sender chose: the problem is named in Passage's words instead, followed by at most
    /// <see cref="MaxQuoted"/> of those characters, each one that is not a token character written <c>\xHH</c>. Words
    /// that quote nothing hold no bytes of the answer and are kept.
    /// </summary>
    private static string WithoutQuotedBytes(string message)
    {
        var open = message.IndexOf('\'');
        if (open < 0)
        {
            return message;
        }
        var close = message.LastIndexOf('\'');
        var quoted = message.AsSpan(open + 1, Math.Max(close - open - 1, 0));
        var problem = message.StartsWith("Received an invalid header name", StringComparison.Ordinal) ? "a field name of the answer is invalid"
            : message.StartsWith("Received an invalid header line", StringComparison.Ordinal) ? "a field line of the answer is malformed"
            : message.StartsWith("Received an invalid status", StringComparison.Ordinal) ? "the answer's status line is malformed"
            : "the answer is malformed";
        var shown = new StringBuilder(problem).Append(": '");
        foreach (var c in quoted[..Math.Min(quoted.Length, MaxQuoted)])
        {
            if (c != '\'' && FieldSyntax.IsTokenChar(c))
            {
                shown.Append(c);
            }
            else
            {
                shown.Append(CultureInfo.InvariantCulture, $"\\x{(int)c:X2}");
            }
        }
        return shown.Append(quoted.Length > MaxQuoted ? "...'" : "'").ToString();
    }
}
