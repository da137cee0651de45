using System.Globalization;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text;
using Passage.Identity;
using Passage.Transport;

namespace Passage.Client;

/// <summary>
/// HTTP/1.1 CONNECT to a relay that does not speak HTTP/2: one TLS connection per tunnel, the relay
/// pinned by node ID. Used only when the relay's ALPN says it has no h2.
/// </summary>
internal static class Http1ConnectDialer
{
    private const int MaxHead = 8 * 1024;

    /// <summary>
    /// The most bytes of interim answers (1xx) read before the final one: 64 KiB, as the HTTP client reads of an answer's
    /// heads, interim ones included.
    /// </summary>
    private const int MaxInterim = 64 * 1024;

    /// <summary>
    /// A TLS handshake with the relay (pinned, ALPN http/1.1) and nothing more: its duration, or null
    /// when it failed (and whether the relay's key was the reason).
    /// </summary>
    public static async Task<(TimeSpan? RoundTrip, bool PinMismatch)> ProbeAsync(PeerAddress relay, SslStreamCertificateContext? certificate, TimeSpan connectTimeout, CancellationToken cancellationToken)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(connectTimeout);
        try
        {
            await socket.ConnectAsync(relay.Host, relay.Port, deadline.Token).ConfigureAwait(false);
            await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
            await tls.AuthenticateAsClientAsync(ClientOptions(relay, certificate), deadline.Token).ConfigureAwait(false);
            return (System.Diagnostics.Stopwatch.GetElapsedTime(started), false);
        }
        catch (AuthenticationException)
        {
            return (null, true);
        }
        catch (Exception e) when (e is SocketException or IOException || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
        {
            return (null, false);
        }
    }

    /// <summary>The link's TLS options (<see cref="RelayLink.TlsOptions"/>), with the relay's name and ALPN http/1.1.</summary>
    private static SslClientAuthenticationOptions ClientOptions(PeerAddress relay, SslStreamCertificateContext? certificate)
    {
        var options = RelayLink.TlsOptions(relay, certificate);
        options.TargetHost = relay.Host;
        options.ApplicationProtocols = [SslApplicationProtocol.Http11];
        return options;
    }

    /// <summary>
    /// Opens a tunnel to <paramref name="host"/>:<paramref name="port"/> through <paramref name="relay"/> over a connection
    /// of its own. The tunnel's connection is closed when <paramref name="closing"/> is cancelled (the client disposed) or
    /// the tunnel is: its reads and writes then fail with an <see cref="IOException"/>, as an HTTP/2 tunnel's do when its
    /// connection is closed (not with the <see cref="ObjectDisposedException"/> of a stream disposed under them).
    /// </summary>
    public static async Task<TunnelAttempt> OpenAsync(PeerAddress relay, SslStreamCertificateContext? certificate, string host, int port, string? token, TimeSpan connectTimeout, TimeSpan answerTimeout, CancellationToken closing, CancellationToken cancellationToken)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        SslStream? tls = null;
        try
        {
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                deadline.CancelAfter(connectTimeout);
                try
                {
                    await socket.ConnectAsync(relay.Host, relay.Port, deadline.Token).ConfigureAwait(false);
                    tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
                    await tls.AuthenticateAsClientAsync(ClientOptions(relay, certificate), deadline.Token).ConfigureAwait(false);
                    // A tunnel may stay open and idle for long: its TLS buffers go back while it is.
                    TlsIdleBuffers.Apply(tls);
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return TunnelAttempt.Failed(TunnelFailure.RelayUnavailable, "connect to the relay timed out");
                }
            }

            // An IPv6 literal goes in brackets (RFC 9112 §3.2.3), once: HttpClient's connect callback names one with them
            // ("[::1]"), as the extended CONNECT's path may (MasqueTcpPath reads both).
            var target = host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[') ? $"[{host}]:{port}" : $"{host}:{port}";
            var head = new StringBuilder().Append("CONNECT ").Append(target).Append(" HTTP/1.1\r\nHost: ").Append(target).Append("\r\n");
            if (token is not null)
            {
                head.Append("Proxy-Authorization: Bearer ").Append(token).Append("\r\n");
            }
            head.Append("\r\n");
            string? answer;
            byte[] extra;
            var interim = 0;
            using (var answerDeadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                answerDeadline.CancelAfter(answerTimeout);
                try
                {
                    await tls.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), answerDeadline.Token).ConfigureAwait(false);
                    await tls.FlushAsync(answerDeadline.Token).ConfigureAwait(false);
                    (answer, extra) = await ReadHeadAsync(tls, answerDeadline.Token).ConfigureAwait(false);
                    // Interim answers (1xx) may come before the final one (RFC 9110 §15.2): passed over. Not a 101: nothing asked
                    // to switch protocols, and what follows it is no HTTP head; it fails the attempt as any other answer.
                    while (answer is not null && ParseStatus(answer) is >= 100 and < 200 and not 101)
                    {
                        // Not without end: a relay that sends them and nothing else held the attempt until the answer
                        // timeout, and for good without one.
                        if ((interim += answer.Length) > MaxInterim)
                        {
                            return TunnelAttempt.Failed(TunnelFailure.RelayError, $"the relay's interim answers are over {MaxInterim / 1024} KiB");
                        }
                        (answer, extra) = await ReadHeadAsync(extra.Length > 0 ? new PrefixedStream(extra, tls) : tls, answerDeadline.Token).ConfigureAwait(false);
                    }
                }
                catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                {
                    return TunnelAttempt.NoAnswer(relay, answerTimeout);
                }
            }
            if (answer is null)
            {
                return extra.Length == MaxHead
                    ? TunnelAttempt.Failed(TunnelFailure.RelayError, $"the relay's answer head is over {MaxHead / 1024} KiB")
                    : Unanswered("the relay closed without answering", certificate);
            }
            var status = ParseStatus(answer);
            if (TunnelFailures.OpensTunnel(status))
            {
                // No body, whatever a Content-Length or Transfer-Encoding in the head says (RFC 9110 §9.3.6): the bytes
                // behind the head are the destination's.
                Stream stream = extra.Length > 0 ? new PrefixedStream(extra, tls) : tls;
                tls = null;
                // The socket, not the stream: a read or write under way, or one to come, fails with an IOException. The
                // registration goes with the tunnel: one the application disposes is not kept until the client is.
                var closed = closing.UnsafeRegister(static s => ((Socket)s!).Dispose(), socket);
                return new TunnelAttempt(new TunnelStream(stream, closed, $"{relay.Host}:{relay.Port}"), default, "");
            }
            if (status == 0)
            {
                // Nothing in a head without a status line is read, a Proxy-Status neither: it said nothing of the destination.
                return TunnelAttempt.Failed(TunnelFailure.RelayError, "the relay's answer has no HTTP/1 status line");
            }
            var proxyStatus = answer.Split("\r\n").FirstOrDefault(l => l.StartsWith("Proxy-Status:", StringComparison.OrdinalIgnoreCase))?["Proxy-Status:".Length..].Trim();
            return TunnelAttempt.Refused(status, proxyStatus);
        }
        catch (AuthenticationException e)
        {
            return TunnelAttempt.Failed(TunnelFailure.PinMismatch, $"relay {relay.Host}:{relay.Port} did not present the key of {relay.NodeId}: {e.Message}");
        }
        catch (Exception e) when (e is SocketException or IOException)
        {
            // Past the handshake, a reset may be the relay's refusal of this client's key.
            return tls is { IsAuthenticated: true } ? Unanswered(e.Message, certificate) : TunnelAttempt.Failed(TunnelFailure.RelayUnavailable, e.Message);
        }
        finally
        {
            if (tls is not null)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
            }
            else if (!socket.Connected)
            {
                socket.Dispose();
            }
        }
    }

    /// <summary>A relay that took the connection (TLS included, as far as this end can tell) and ended it without an answer.</summary>
    private static TunnelAttempt Unanswered(string what, SslStreamCertificateContext? certificate)
    {
        var hint = RelayLink.MutualTlsHint(certificate);
        return TunnelAttempt.Failed(TunnelFailure.RelayUnavailable, $"{what}; {hint}", hint);
    }

    /// <summary>
    /// Reads an answer head, up to <see cref="MaxHead"/> bytes, and the bytes read behind it. No head: the relay closed
    /// before its end (nothing behind it), or sent <see cref="MaxHead"/> bytes without one (all of them behind it).
    /// </summary>
    private static async Task<(string? Head, byte[] Extra)> ReadHeadAsync(Stream stream, CancellationToken cancellationToken)
    {
        var buffer = new byte[MaxHead];
        var filled = 0;
        while (filled < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(filled), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                return (null, []);
            }
            filled += n;
            var end = buffer.AsSpan(0, filled).IndexOf("\r\n\r\n"u8);
            if (end >= 0)
            {
                return (Encoding.ASCII.GetString(buffer, 0, end + 4), buffer[(end + 4)..filled]);
            }
        }
        return (null, buffer);
    }

    /// <summary>
    /// The status code of an answer head's status line (RFC 9112 §4: <c>HTTP/1.x SP 3DIGIT SP [reason]</c>; an answer
    /// without the space before an empty reason is taken too, as RFC 9112 asks of a client), or 0 for a line that is no
    /// HTTP/1 status line: its code is not taken from a line that only looks like one (<c>FOO 200 X</c> opened a tunnel,
    /// and <c>HTTP/1.1 200</c> without a reason failed the attempt as the relay's).
    /// </summary>
    private static int ParseStatus(string head)
    {
        var end = head.IndexOf("\r\n", StringComparison.Ordinal);
        var line = head.AsSpan(0, end >= 0 ? end : head.Length);
        // "HTTP/1.1 200": the version is 8 characters, then a space and three digits.
        if (line.Length < 12 || !line.StartsWith("HTTP/1.") || !char.IsAsciiDigit(line[7]) || line[8] != ' '
            || (line.Length > 12 && line[12] != ' ')
            || !int.TryParse(line.Slice(9, 3), NumberStyles.None, CultureInfo.InvariantCulture, out var status) || status < 100)
        {
            return 0;
        }
        return status;
    }
}
