using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Passage.Configuration;
using Passage.Relay.Auth;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// Everything between "a client asked for host:port" and "a socket to it is open", shared by the
/// HTTP/1.1 and HTTP/2 front doors:
/// <code>
///  credentials → name/port rules (before any lookup) → tunnel slot (overall, per client)
///  → resolve and check every address → dial exactly the checked addresses (connect timeout)
/// </code>
/// Every refusal comes back as a <see cref="RefusalReason"/> that maps to a status and a Proxy-Status.
/// </summary>
internal sealed class TunnelOpener
{
    private readonly DestinationRules _rules;
    private readonly UpstreamConnector _upstreams;
    private readonly ProxyAuthenticator _authenticator;
    private readonly ClientIdPolicy _clientIds;
    private readonly TunnelLimiter _limiter;

    public TunnelOpener(
        DestinationRules rules,
        DestinationResolver resolver,
        ProxyAuthenticator authenticator,
        ClientIdPolicy clientIds,
        TunnelLimiter limiter,
        RelayLimits limits,
        ILogger logger,
        TimeProvider time)
    {
        _rules = rules;
        _upstreams = new UpstreamConnector(resolver, limits, logger, time);
        _authenticator = authenticator;
        _clientIds = clientIds;
        _limiter = limiter;
    }

    /// <summary>True when clients must present a pinned certificate (mutual TLS).</summary>
    public bool RequiresClientCertificate => _clientIds.RequiresClientCertificate;

    /// <summary>Tunnels open now.</summary>
    public int OpenTunnels => _limiter.Open;

    /// <summary>The mutual-TLS check, for the TLS handshake.</summary>
    public bool AllowsClientCertificate(X509Certificate? certificate) =>
        _clientIds.Allows(certificate is null ? null : certificate as X509Certificate2 ?? new X509Certificate2(certificate));

    /// <summary>Null when the credentials are good (or none are required); else the refusal.</summary>
    public RefusalReason? Authenticate(string? proxyAuthorization) => Refusal(_authenticator.Check(proxyAuthorization));

    /// <summary>
    /// <see cref="Authenticate(string?)"/> for a field value as the HTTP/1.1 door reads it, its bytes each a Latin-1
    /// character (empty when there is none): it never becomes a string.
    /// </summary>
    public RefusalReason? Authenticate(ReadOnlySpan<byte> proxyAuthorization) => Refusal(_authenticator.CheckLatin1(proxyAuthorization));

    private static RefusalReason? Refusal(AuthResult result) => result == AuthResult.Allowed ? null : RefusalReason.AuthenticationRequired;

    /// <summary>Checks, resolves and dials <paramref name="host"/>:<paramref name="port"/> for <paramref name="client"/>.</summary>
    public async ValueTask<TunnelOpening> OpenAsync(string host, int port, IPAddress? client, CancellationToken cancellationToken)
    {
        var verdict = _rules.Check(host, port);
        if (!verdict.IsAllowed)
        {
            return verdict.Status == RuleStatus.InvalidHost
                ? TunnelOpening.Refused(RefusalReason.InvalidDestination, "not a valid host name")
                : TunnelOpening.Refused(RefusalReason.DestinationDenied, "destination not allowed by the relay's policy");
        }

        var lease = _limiter.TryAcquire(client);
        if (lease is null)
        {
            return TunnelOpening.Refused(RefusalReason.ConnectionLimit, "too many tunnels");
        }

        try
        {
            var reached = await _upstreams.ConnectAsync(new HostPort(host, port), cancellationToken, clientNamed: true).ConfigureAwait(false);
            if (reached.Connection is not { } upstream)
            {
                lease.Dispose();
                return TunnelOpening.Refused(reached.Refusal, reached.Detail);
            }
            return new TunnelOpening(upstream, lease, default, "");
        }
        catch
        {
            lease.Dispose();
            throw;
        }
    }
}
