using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Configuration;
using Passage.Identity;
using Passage.Relay.Auth;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;
using Passage.Telemetry;
using Passage.Transport;
using Passage.Transport.Handoff;

namespace Passage.Relay.Connect;

/// <summary>
/// The CONNECT relay: an HTTPS proxy with the relay's own identity, serving HTTP/1.1 CONNECT and
/// HTTP/2 extended CONNECT (<c>:protocol connect-tcp</c>, many tunnels over one connection).
/// </summary>
/// <remarks>
/// <code>
///  accept (FrontDoorListener: limits, drain)
///   ├─ TLS endpoint: TLS handshake (identity, ALPN h2/http1.1, optional client pin)
///   │    ├─ h2        → preface checked (Http2Start) → Kestrel (HTTP/2 framing) → Http2ConnectHandler per stream
///   │    └─ http/1.1  → Http1ConnectSession on the SslStream
///   └─ plain endpoint: h2 prior-knowledge preface, checked → Kestrel; otherwise Http1ConnectSession on the socket
///  each tunnel: auth → name/port rules → resolve + address policy → dial → pump
/// </code>
/// HTTP/1.1 tunnels move bytes on Passage's own pump (zero-copy where both ends are plain sockets);
/// HTTP/2 tunnels go through Kestrel's streams.
/// </remarks>
public sealed partial class ConnectRelay : IAsyncDisposable
{
    /// <summary>
    /// The <c>front_door</c> tag of the CONNECT door's connections, HTTP/1.1 and HTTP/2 alike: each is counted accepted,
    /// then refused or closed once; an HTTP/1.1 connection's tunnel is the connection.
    /// </summary>
    internal const string FrontDoor = "connect";

    /// <summary>
    /// The <c>front_door</c> tag of what the requests on the CONNECT door's HTTP/2 connections come to: refused, or
    /// tunnels opened and then closed. Kept apart from <see cref="FrontDoor"/>, whose connections they ride on, so that
    /// each tag's counts add up.
    /// </summary>
    internal const string Http2FrontDoor = "connect_h2";

    private readonly ConnectOptions _options;
    private readonly RelayLimits _limits;
    private readonly NodeIdentity _identity;
    private readonly ILogger _logger;
    private readonly ILoggerFactory _loggerFactory;
    private readonly RelayMetrics _metrics;
    private readonly TimeProvider _time;
    private readonly TunnelOpener _opener;
    private readonly SslServerAuthenticationOptions _tlsOptions;
    // The TLS connections whose handshake refused the client's key (--client-id), until each is collected.
    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<object, object> _clientIdRefused = new();
    private readonly TunnelPump _tunnels;
    private readonly IDisposable? _tokenFile;
    private readonly Http1ConnectSession _http1;
    private readonly List<FrontDoorListener> _listeners = new();
    private Http2ConnectServer? _http2;
    private long _nextHandoffId;

    /// <summary>Creates the relay; nothing listens until <see cref="StartAsync"/>.</summary>
    internal ConnectRelay(
        ConnectOptions options,
        RelayLimits limits,
        NodeIdentity identity,
        TunnelOpener opener,
        ILoggerFactory? loggerFactory,
        RelayMetrics metrics,
        TimeProvider? timeProvider,
        IDisposable? tokenFile = null)
    {
        _tokenFile = tokenFile;
        _options = options;
        _limits = limits;
        _identity = identity;
        _opener = opener;
        _loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        _logger = _loggerFactory.CreateLogger<ConnectRelay>();
        _metrics = metrics;
        _time = timeProvider ?? TimeProvider.System;
        _tunnels = new TunnelPump(options, limits.HandshakeTimeout, limits.PumpOptions(_time, metrics.Bytes), metrics, _logger);
        _http1 = new Http1ConnectSession(opener, _tunnels, options, _logger, metrics, _time);
        _tlsOptions = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = SslStreamCertificateContext.Create(identity.Certificate, additionalCertificates: null, offline: true),
            // http/1.1 also when only HTTP/2 is served, so that an HTTP/1.1 client is told so in HTTP (505), not by an alert.
            ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11],
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = opener.RequiresClientCertificate,
            RemoteCertificateValidationCallback = opener.RequiresClientCertificate
                ? (tls, certificate, _, _) => opener.AllowsClientCertificate(certificate) || ClientIdRefused(tls)
                : null,
            CertificateChainPolicy = CertificatePin.OfflineChainPolicy(),
        };
    }

    /// <summary>
    /// Builds a CONNECT relay: loads its identity (creating it, mode 0600, if missing), its
    /// destination rules, token file and client pins. Throws <see cref="ArgumentException"/> for
    /// settings that do not parse (validate them first with <see cref="ConnectSettings"/>).
    /// </summary>
    /// <exception cref="InvalidDataException">The key, its certificate or the token file cannot be read or written (they
    /// may have changed since the settings were checked); the message begins with the key that names it
    /// (<c>relay.key: </c>, <c>relay.tokenFile: </c>).</exception>
    public static ConnectRelay Create(
        ConnectOptions options,
        RelayLimits limits,
        DestinationResolver resolver,
        ILoggerFactory? loggerFactory = null,
        RelayMetrics? metrics = null,
        TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(limits);
        ArgumentNullException.ThrowIfNull(resolver);
        var errors = new List<string>();
        var rules = DestinationRules.Parse(options.Allow, options.Deny, "allow", "deny", errors);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }
        // Loopback names and the addresses the TLS endpoints bind go into every new certificate, so clients that
        // reach the relay there can verify it by name (the banner's curl command among them).
        var bound = options.Endpoints.Where(e => !e.Address.Equals(IPAddress.Any) && !e.Address.Equals(IPAddress.IPv6Any)).Select(e => e.Address.ToString());
        var names = options.Names.Concat(["localhost", "127.0.0.1", "::1"]).Concat(bound).Distinct(StringComparer.OrdinalIgnoreCase);
        // Checked before the token file is opened, which holds a watcher from then on.
        var clientIds = ClientIdPolicy.Parse(options.ClientIds, "clientIds", errors);
        if (errors.Count > 0)
        {
            throw new ArgumentException(string.Join("; ", errors), nameof(options));
        }
        var time = timeProvider ?? TimeProvider.System;
        var logger = (loggerFactory ?? NullLoggerFactory.Instance).CreateLogger<ConnectRelay>();
        // The files were checked with the settings, but may have changed since: a failure now names its key as the check does.
        NodeIdentity identity;
        try
        {
            identity = NodeIdentity.LoadOrCreate(options.KeyFile, names, out _);
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or CryptographicException)
        {
            throw new InvalidDataException($"relay.key: {e.Message}", e);
        }
        TokenFile? tokens = null;
        string? certificateProblem;
        try
        {
            certificateProblem = WriteCertificateBeside(options.KeyFile, identity);
            if (options.TokenFile is not null && !TokenFile.TryOpen(options.TokenFile, out tokens, out var tokenError, time))
            {
                throw new InvalidDataException($"relay.tokenFile: {tokenError}");
            }
        }
        catch
        {
            identity.Dispose();
            throw;
        }
        if (tokens is not null)
        {
            // The file is re-read as it changes: say what each re-read found (a file opened to others too), and at start
            // if it lets no one in.
            var tokenPath = options.TokenFile!;
            tokens.Changed += (_, change) => Log.TokenFileChanged(logger, tokenPath, change);
            if (tokens.Count == 0)
            {
                Log.TokenFileEmpty(logger, tokenPath);
            }
        }
        var opener = new TunnelOpener(
            rules,
            resolver,
            new ProxyAuthenticator(tokens),
            clientIds,
            new TunnelLimiter(options.MaxTunnels, options.MaxTunnelsPerClient),
            limits,
            logger,
            time);
        if (certificateProblem is not null)
        {
            Log.CertificateNotWritten(logger, CertificatePathFor(options.KeyFile), certificateProblem);
        }
        return new ConnectRelay(options, limits, identity, opener, loggerFactory, metrics ?? new RelayMetrics(), time, tokens)
        {
            CertificateProblem = certificateProblem,
        };
    }

    /// <summary>Where the relay's certificate (public) is written: the key file's name with <c>.crt</c>.</summary>
    public static string CertificatePathFor(string keyFile) => Path.ChangeExtension(keyFile, ".crt");

    // A PEM certificate is a few KiB.
    private const int CertificateFileMaxBytes = 1024 * 1024;

    /// <summary>
    /// Writes the relay's certificate beside its key unless it is there already; returns why it could not be (the
    /// system's words: <c>Permission denied</c>, <c>Read-only file system</c>), or null. A key kept where the relay may
    /// read but not write (a secret mounted read-only, a configuration directory under systemd's ProtectSystem=strict)
    /// is no reason not to start: clients pin the relay's node ID, and the certificate file only serves those that
    /// verify by a CA file.
    /// </summary>
    private static string? WriteCertificateBeside(string keyFile, NodeIdentity identity)
    {
        var path = CertificatePathFor(keyFile);
        var pem = identity.Certificate.ExportCertificatePem() + "\n";
        try
        {
            // Read only as a regular file, bounded (InputFile throws for anything else): opening a FIFO waits for its other end.
            if (!File.Exists(path) || Encoding.ASCII.GetString(InputFile.ReadAll(path, CertificateFileMaxBytes)) != pem)
            {
                File.WriteAllText(path, pem);
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return SecretFile.Reason(e) ?? e.Message;
        }
    }

    /// <summary>
    /// Why the certificate could not be written beside the key at start (<see cref="CertificatePath"/> is then missing,
    /// or holds another certificate), or null when it is there.
    /// </summary>
    public string? CertificateProblem { get; private init; }

    /// <summary>The relay's certificate file (public; for clients that verify by CA file, e.g. <c>curl --proxy-cacert</c>).</summary>
    public string CertificatePath => CertificatePathFor(_options.KeyFile);

    /// <summary>The relay's node ID (its key's pin).</summary>
    public NodeId NodeId => _identity.NodeId;

    /// <summary>
    /// Whether the relay's certificate names <paramref name="address"/>, so a client that verifies the relay by
    /// its certificate file (not by its node ID) can reach it there. A certificate made before the relay listened
    /// there, or by <c>passage keygen</c> without <c>--name</c>, does not.
    /// </summary>
    public bool CertificateNames(IPAddress address) => _identity.Certificate.MatchesHostname(address.ToString(), allowWildcards: false, allowCommonName: false);

    /// <summary>The TLS endpoints actually bound, once started.</summary>
    public IReadOnlyList<IPEndPoint> LocalEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>The plain endpoints actually bound, once started.</summary>
    public IReadOnlyList<IPEndPoint> LocalPlainEndpoints { get; private set; } = Array.Empty<IPEndPoint>();

    /// <summary>Tunnels open now.</summary>
    public int OpenTunnels => _opener.OpenTunnels;

    /// <summary>Starts Kestrel for HTTP/2 and binds every endpoint.</summary>
    public async Task StartAsync()
    {
        var handler = new Http2ConnectHandler(_opener, _tunnels, _logger, _metrics, _options.MaxRequestHeadBytes, _time);
        _http2 = await Http2ConnectServer.StartAsync(_options, handler.HandleAsync, _loggerFactory, _metrics).ConfigureAwait(false);
        if (_options.Endpoints.Count > 0)
        {
            var tls = new FrontDoorListener(FrontDoor, _options.Endpoints, _limits, HandleTlsAsync, _logger, _metrics, _time);
            _listeners.Add(tls);
            tls.Start();
            LocalEndpoints = tls.LocalEndpoints;
        }
        if (_options.PlainEndpoints.Count > 0)
        {
            // Counted as "connect" too: the sessions behind both listeners count under that tag.
            var plain = new FrontDoorListener(FrontDoor + "-plain", _options.PlainEndpoints, _limits, HandlePlainAsync, _logger, _metrics, _time, FrontDoor);
            _listeners.Add(plain);
            plain.Start();
            LocalPlainEndpoints = plain.LocalEndpoints;
        }
    }

    /// <summary>How long Kestrel's stop waits beyond the drain deadline, by which the front doors have closed every connection.</summary>
    private static readonly TimeSpan KestrelGraceAfterDrain = TimeSpan.FromSeconds(10);

    /// <summary>Stops accepting, drains open connections up to the drain timeout, then closes them.</summary>
    /// <remarks>
    /// HTTP/2 connections are told to go away (GOAWAY, RFC 9113 §6.8) at once, so idle ones close
    /// now and busy ones finish their tunnels; both kinds are closed at the drain deadline.
    /// </remarks>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        // Before any tunnel can be cancelled by the stop: those are counted as shut down.
        _tunnels.Stopping();
        var stops = _listeners.Select(l => l.StopAsync(cancellationToken)).ToList();
        if (_http2 is not null)
        {
            // The front doors close the HTTP/2 connections at the drain deadline (the tunnels then counted shut down);
            // Kestrel's own grace runs past it, so that it does not cut them first, unannounced.
            stops.Add(_http2.StopAsync(cancellationToken.IsCancellationRequested ? TimeSpan.Zero : _limits.DrainTimeout + KestrelGraceAfterDrain));
        }
        await Task.WhenAll(stops).ConfigureAwait(false);
    }

    private async Task<bool> HandleTlsAsync(Socket socket, long id, IConnectionEnd end, CancellationToken closeAll)
    {
        socket.NoDelay = true;
        var remote = socket.RemoteEndPoint as IPEndPoint;
        var local = socket.LocalEndPoint as IPEndPoint;
        // The TLS socket waits through Passage's own readiness, as plain ones do (see SocketStream).
        var transport = new SocketConnection(socket);
        var tls = new SslStream(new SocketStream(transport), leaveInnerStreamOpen: false);
        var relayed = false;
        try
        {
            using (var deadline = new Deadline(_limits.HandshakeTimeout, _time, closeAll))
            {
                try
                {
                    // A TLS client's first byte opens a handshake record. Anything else is refused now rather than at
                    // the handshake timeout, and a plain HTTP request is told what went wrong in HTTP.
                    var first = await transport.PeekByteAsync(deadline.Token).ConfigureAwait(false);
                    if (first != TlsWire.ContentTypeHandshake)
                    {
                        await RefuseNotTlsAsync(transport, id, first).ConfigureAwait(false);
                        return false;
                    }
                    await tls.AuthenticateAsServerAsync(_tlsOptions, deadline.Token).ConfigureAwait(false);
                    // Idle tunnels are most of a relay's tunnels: their TLS buffers go back while they are.
                    TlsIdleBuffers.Apply(tls);
                }
                catch (OperationCanceledException)
                {
                    Refused(id, closeAll.IsCancellationRequested ? RefusalReason.ShuttingDown : RefusalReason.HandshakeTimeout);
                    return false;
                }
                catch (Exception e) when (e is AuthenticationException or IOException or SocketException)
                {
                    Refused(id, _clientIdRefused.TryGetValue(tls, out _) ? RefusalReason.ClientIdNotAllowed : RefusalReason.TlsHandshakeFailed);
                    return false;
                }
            }

            if (tls.NegotiatedApplicationProtocol == SslApplicationProtocol.Http2)
            {
                // Exactly the bytes checked are read here: the rest stays in the TLS stream for Kestrel.
                var start = new byte[Http2Start.Length];
                int seen;
                using (var head = new Deadline(_options.RequestHeadTimeout, _time, closeAll))
                {
                    seen = await ReadHttp2StartAsync(new StreamConnection(tls, socket, abort: transport.Abort), start, 0, id, head.Token, closeAll).ConfigureAwait(false);
                }
                if (seen > 0)
                {
                    await HandToKestrelAsync(new PrefixedStream(start, tls), local, remote, id, closeAll).ConfigureAwait(false);
                }
                return false;
            }
            // Relayed: the tunnel's connection owns the TLS stream and disposes it at the end.
            // Aborted through its SocketConnection, which also ends a read waiting on the socket.
            var connection = new StreamConnection(tls, socket, abort: transport.Abort);
            if (_options.MinHttpVersion >= 2)
            {
                // ALPN http/1.1, or none at all: HTTP/1.1, answered as on the plain listener.
                await RefuseHttp1Async(connection).ConfigureAwait(false);
                return false;
            }
            relayed = await _http1.StartAsync(connection, transport, remote, id, end, closeAll).ConfigureAwait(false);
            return relayed;
        }
        finally
        {
            if (!relayed)
            {
                await tls.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    /// <summary>An HTTP/1.1 client of a relay that serves HTTP/2 only (<c>minHttpVersion</c> 2): 505, on either listener.</summary>
    private Task RefuseHttp1Async(IDuplexConnection client) =>
        Http1ConnectSession.RefuseAsync(client, RefusalReason.UnsupportedVersion, "this relay serves HTTP/2 only", _metrics, _time);

    private async Task<bool> HandlePlainAsync(Socket socket, long id, IConnectionEnd end, CancellationToken closeAll)
    {
        socket.NoDelay = true;
        var remote = socket.RemoteEndPoint as IPEndPoint;
        var client = new SocketConnection(socket);
        byte[] first;
        // One deadline for the whole request head, the bytes that tell HTTP/2 from HTTP/1.1 included, and for the
        // start of an HTTP/2 connection.
        var head = new Deadline(_options.RequestHeadTimeout, _time, closeAll);
        try
        {
            var (buffer, seen) = await ReadPrefaceAsync(client, head.Token, closeAll).ConfigureAwait(false);
            if (buffer is null)
            {
                return false;
            }
            if (!buffer.AsSpan(0, seen).StartsWith(Http2Start.Preface))
            {
                if (_options.MinHttpVersion >= 2)
                {
                    ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // what it read may hold credentials
                    await RefuseHttp1Async(client).ConfigureAwait(false);
                    return false;
                }
                // The buffer is the session's from here: the rest of the head is read into it, behind what came.
                return await _http1.StartAsync(client, client, remote, id, end, closeAll, new Http1ConnectSession.ReadSoFar(buffer, seen), head.Token).ConfigureAwait(false);
            }
            try
            {
                seen = await ReadHttp2StartAsync(client, buffer, seen, id, head.Token, closeAll).ConfigureAwait(false);
                if (seen == 0)
                {
                    return false;
                }
                // Kestrel reads the preface from a prefix of its own: a rare path, and the connection outlives the buffer.
                first = buffer.AsSpan(0, seen).ToArray();
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // what it read may hold credentials
            }
        }
        finally
        {
            head.Dispose();
        }
        // Kestrel keeps its own timeouts for the connection's life.
        await HandToKestrelAsync(new PrefixedStream(first, new SocketStream(client)), socket.LocalEndPoint as IPEndPoint, remote, id, closeAll).ConfigureAwait(false);
        return false;
    }

    /// <summary>
    /// HTTP/2 with prior knowledge (RFC 9113 §3.3) starts with the connection preface; anything
    /// else is HTTP/1.1. Reads what the client has sent (most often its whole request head, in one
    /// call), more only while that is a shorter start of the preface, and returns it, to be handed on
    /// to whichever protocol it turns out to be, in a buffer of <c>MaxRequestHeadBytes</c> rented from the shared pool
    /// (the caller's to give back); no buffer when the client left or went quiet (then it has been answered and
    /// closed). Until the client's first bytes come, no buffer is held.
    /// </summary>
    private async ValueTask<(byte[]? Buffer, int Length)> ReadPrefaceAsync(SocketConnection client, CancellationToken headDeadline, CancellationToken closeAll)
    {
        var size = _options.MaxRequestHeadBytes;
        byte[]? buffer = null;
        try
        {
            var seen = 0;
            if (client.IsNonBlocking)
            {
                // Most clients have sent their head by the time it is accepted: one recv takes it.
                buffer = ArrayPool<byte>.Shared.Rent(size);
                var now = client.ReceiveNow(buffer.AsSpan(0, size));
                if (now > 0)
                {
                    seen = (int)now;
                }
                else if (now != -LinuxSplice.EAGAIN)
                {
                    // Gone already (end of stream, or reset).
                    await LeftAsync(client).ConfigureAwait(false);
                    return default;
                }
                else
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = null;
                }
            }
            if (seen == 0)
            {
                // Nothing yet: wait holding no buffer (after the recv above, without asking the kernel again).
                await client.ReadAsync(Memory<byte>.Empty, headDeadline).ConfigureAwait(false);
            }
            buffer ??= ArrayPool<byte>.Shared.Rent(size);
            while (seen == 0 || (seen < Http2Start.Preface.Length && buffer.AsSpan(0, seen).SequenceEqual(Http2Start.Preface[..seen])))
            {
                var n = await client.ReadAsync(buffer.AsMemory(seen, size - seen), headDeadline).ConfigureAwait(false);
                if (n == 0)
                {
                    await LeftAsync(client).ConfigureAwait(false);
                    return default;
                }
                seen += n;
            }
            var read = buffer;
            buffer = null;
            return (read, seen);
        }
        catch (OperationCanceledException)
        {
            // As the rest of the head is answered (Http1ConnectSession): the stop is not a timeout.
            var (reason, detail) = closeAll.IsCancellationRequested
                ? (RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail)
                : (RefusalReason.RequestHeadTimeout, "request head not received in time");
            await Http1ConnectSession.RefuseAsync(client, reason, detail, _metrics, _time).ConfigureAwait(false);
            return default;
        }
        catch (SocketException)
        {
            // Reset before its first bytes.
            await LeftAsync(client).ConfigureAwait(false);
            return default;
        }
        finally
        {
            if (buffer is not null)
            {
                ArrayPool<byte>.Shared.Return(buffer, clearArray: true); // what it read may hold credentials
            }
        }
    }

    /// <summary>
    /// A client gone before its first bytes or before its HTTP/2 connection's start was whole: counted (as pass-through
    /// counts one gone before its hello) and closed.
    /// </summary>
    private async ValueTask LeftAsync(IDuplexConnection client)
    {
        _metrics.Refused(FrontDoor, RefusalReason.ClientClosed);
        await client.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Reads the start of an HTTP/2 connection (<see cref="Http2Start"/>: its preface and its first frame's header)
    /// behind the <paramref name="seen"/> bytes at the start of <paramref name="buffer"/>, by <paramref name="deadline"/>,
    /// and returns how many bytes the buffer holds then, for Kestrel to read first. 0: the start was wrong, late or cut
    /// short; the client has been answered (SETTINGS and GOAWAY) or has left, it is counted, and the connection closed.
    /// </summary>
    private async ValueTask<int> ReadHttp2StartAsync(IDuplexConnection client, byte[] buffer, int seen, long id, CancellationToken deadline, CancellationToken closeAll)
    {
        RefusalReason reason;
        uint error;
        string detail;
        try
        {
            while (true)
            {
                var verdict = Http2Start.Check(buffer.AsSpan(0, seen), out error, out detail);
                if (verdict == Http2Start.Verdict.Valid)
                {
                    return seen;
                }
                if (verdict == Http2Start.Verdict.Invalid)
                {
                    reason = RefusalReason.MalformedRequest;
                    break;
                }
                var n = await client.ReadAsync(buffer.AsMemory(seen), deadline).ConfigureAwait(false);
                if (n == 0)
                {
                    await LeftAsync(client).ConfigureAwait(false);
                    return 0;
                }
                seen += n;
            }
        }
        catch (OperationCanceledException)
        {
            reason = closeAll.IsCancellationRequested ? RefusalReason.ShuttingDown : RefusalReason.RequestHeadTimeout;
            (error, detail) = (Http2Start.NoError, closeAll.IsCancellationRequested ? RefusalReasonHttp.ShuttingDownDetail : "connection preface not received in time");
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            await LeftAsync(client).ConfigureAwait(false);
            return 0;
        }
        Refused(id, reason);
        await LingeringClose.CloseAsync(client, Http2Start.GoAway(error, detail), _time).ConfigureAwait(false);
        return 0;
    }

    /// <summary>
    /// Hands an HTTP/2 connection whose start was right to Kestrel and waits until Kestrel is done with it; then counts
    /// it closed, as an HTTP/1.1 connection is at its tunnel's end (<see cref="Http2End"/>), or refused
    /// (<c>shutting_down</c>) when Kestrel had stopped taking connections.
    /// </summary>
    private async Task HandToKestrelAsync(Stream stream, IPEndPoint? local, IPEndPoint? remote, long id, CancellationToken closeAll)
    {
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var connection = new StreamConnectionContext($"p{Interlocked.Increment(ref _nextHandoffId)}", stream, local, remote, () => closed.TrySetResult());
        // Its clock runs from now: Kestrel's own keep-alive timeout starts again at every PING (Http2ConnectionIdle).
        using var idle = new Http2ConnectionIdle(connection, _limits.IdleTimeout, _time);
        connection.Features.Set(idle);
        var kestrelEnd = new KestrelConnectionErrors.Watch();
        connection.Features.Set(kestrelEnd);
        var drain = new Http2DrainDeadline(connection);
        connection.Features.Set(drain);
        if (_http2 is null || !_http2.Hand(connection))
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            Refused(id, RefusalReason.ShuttingDown);
            return;
        }
        // The front door keeps counting this connection until Kestrel is done with it. At the drain deadline its streams
        // are ended one by one, then the connection (Http2DrainDeadline); a client that does not take those last answers
        // (one that does not read) has its connection aborted a little later.
        ITimer? abortLater = null;
        using (closeAll.Register(() =>
        {
            _tunnels.ClosingAll();
            drain.Reach();
            Volatile.Write(ref abortLater, _time.CreateTimer(
                static state => ((ConnectionContext)state!).Abort(new ConnectionAbortedException("relay stopping")),
                connection, LastAnswersAtDrainDeadline, Timeout.InfiniteTimeSpan));
        }))
        {
            await closed.Task.ConfigureAwait(false);
        }
        Volatile.Read(ref abortLater)?.Dispose();
        _metrics.Relayed(FrontDoor, Http2End(idle.Expired, connection.Failed || kestrelEnd.IsErrored));
    }

    /// <summary>How long an HTTP/2 connection is given at the drain deadline to take its streams' last answers.</summary>
    private static readonly TimeSpan LastAnswersAtDrainDeadline = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How an HTTP/2 connection ended, as its count in <c>passage.relay.connections.closed</c> tells it: <c>shutdown</c>
    /// once the relay has begun to stop, <c>idle_timeout</c> when the relay told it to go away for carrying no tunnel
    /// (<paramref name="idleExpired"/>), <c>client_failed</c> when it broke or its client broke HTTP/2
    /// (<paramref name="failed"/>: its transport failed, Kestrel aborted it, as for a PING left unanswered, or Kestrel
    /// closed it for an error, as with a GOAWAY carrying PROTOCOL_ERROR, which <c>passage.relay.http2.connection_errors</c>
    /// counts by its type too), else <c>completed</c> (closed by the client, or by Kestrel with a GOAWAY without an
    /// error). Its bytes were counted by its tunnels.
    /// </summary>
    private PumpResult Http2End(bool idleExpired, bool failed)
    {
        var end = _tunnels.IsStopping ? PumpEnd.Canceled
            : idleExpired ? PumpEnd.IdleTimeout
            : failed ? PumpEnd.Failed
            : PumpEnd.Completed;
        return new PumpResult(end, PumpSide.Client, 0, 0);
    }

    /// <summary>
    /// Turns away a connection to the TLS listener whose first byte (or end, -1) is not TLS. A letter starts a plain
    /// HTTP request, most likely from a client given an http:// proxy URL for this port: it gets a 400 saying so, as
    /// a web server answers plain HTTP on its HTTPS port. Anything else gets the fatal alert pass-through sends.
    /// </summary>
    private async Task RefuseNotTlsAsync(SocketConnection client, long id, int first)
    {
        if (first < 0)
        {
            Refused(id, RefusalReason.ClientClosed);
            return;
        }
        Refused(id, RefusalReason.NotTls);
        ReadOnlyMemory<byte> answer;
        if (char.IsAsciiLetter((char)first))
        {
            var http = new ArrayBufferWriter<byte>(256);
            Http1Response.Error(http, RefusalReason.MalformedRequest, "plain HTTP sent to the TLS listener: use an https:// proxy URL");
            answer = http.WrittenMemory;
        }
        else
        {
            answer = TlsAlert.Fatal(TlsAlertDescription.HandshakeFailure);
        }
        await LingeringClose.CloseAsync(client, answer, _time).ConfigureAwait(false);
    }

    /// <summary>
    /// Marks the handshake of <paramref name="tls"/> as refused for its client's key (none, or one <c>--client-id</c> does not
    /// list), so that its failure is counted as that rather than as a broken handshake; false, the callback's answer.
    /// </summary>
    private bool ClientIdRefused(object tls)
    {
        _clientIdRefused.AddOrUpdate(tls, tls);
        return false;
    }

    private void Refused(long id, RefusalReason reason)
    {
        _metrics.Refused(FrontDoor, reason);
        Log.Refused(_logger, id, reason.Name());
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(new CancellationToken(canceled: true)).ConfigureAwait(false);
        foreach (var listener in _listeners)
        {
            await listener.DisposeAsync().ConfigureAwait(false);
        }
        if (_http2 is not null)
        {
            await _http2.DisposeAsync().ConfigureAwait(false);
        }
        // Its file watcher, and the handler that logs its re-reads.
        _tokenFile?.Dispose();
    }
}
