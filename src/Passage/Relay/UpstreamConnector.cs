using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Passage.Configuration;
using Passage.Relay.Destinations;
using Passage.Telemetry;
using Passage.Transport;

namespace Passage.Relay;

/// <summary>
/// Reaches an upstream for any front door: resolve the name (or take the literal), check every
/// address against the policy, and dial exactly the checked addresses, all within the connect
/// timeout. The client never decides where bytes go beyond the name its route or request allows.
/// </summary>
/// <param name="resolver">Resolves and checks the destination.</param>
/// <param name="limits">The connect timeout.</param>
/// <param name="logger">Where refusals and unavailable upstreams are said.</param>
/// <param name="time">The clock the timeout runs on.</param>
/// <param name="routeBack">
/// Tells a dial that reached the front door's own listener, refused (see <see cref="RouteBack"/>); null for none.
/// </param>
internal sealed partial class UpstreamConnector(
    DestinationResolver resolver, RelayLimits limits, ILogger logger, TimeProvider time, RouteBack? routeBack = null)
{
    /// <summary>
    /// Clients choose destinations, and so how many upstreams fail: at most this many such warnings every 10 s, the
    /// rest counted and said before the next one.
    /// </summary>
    internal const int WarningsPerWindow = 10;

    private readonly LogBudget _warnings = new(WarningsPerWindow, TimeSpan.FromSeconds(10), time);

    /// <summary>A connected socket (the caller owns it), or why there is none.</summary>
    public readonly record struct Result(SocketConnection? Connection, RefusalReason Refusal, string Detail, IPEndPoint? Reached = null);

    /// <summary>
    /// Connects to <paramref name="target"/>. <paramref name="cancellationToken"/> is the caller's
    /// stop signal: when it fires the result is <see cref="RefusalReason.ShuttingDown"/>. With <paramref name="clientNamed"/>,
    /// the target's name is a client's (see <see cref="DestinationResolver.ResolveAsync"/>).
    /// </summary>
    public async ValueTask<Result> ConnectAsync(HostPort target, CancellationToken cancellationToken, bool clientNamed = false)
    {
        using var deadline = new Deadline(limits.ConnectTimeout, time, cancellationToken);
        ResolveResult resolved;
        try
        {
            resolved = await resolver.ResolveAsync(target.Host, deadline.Token, clientNamed).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return new(null, RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail);
            }
            Warn(target, RefusalReason.DnsTimeout, SocketError.TimedOut);
            return new(null, RefusalReason.DnsTimeout, "lookup timed out");
        }

        switch (resolved.Status)
        {
            case ResolveStatus.Ok:
                break;
            case ResolveStatus.Prohibited:
                var described = Described(resolved.RefusedCategory, resolved.RefusedAddress);
                Log.DestinationProhibited(logger, target.ToString(), $"{resolved.RefusedAddress} is {described}");
                return new(null, RefusalReason.DestinationProhibited, $"resolves to {described}");
            case ResolveStatus.InvalidName:
                return new(null, RefusalReason.InvalidDestination, "not a valid host name");
            case ResolveStatus.NoAddresses:
                return new(null, RefusalReason.DnsError, "no addresses");
            case ResolveStatus.DnsError when resolved.DnsErrorCode == SocketError.TooManyOpenSockets:
                // No descriptor to ask with (EMFILE, or the runtime's headroom): this relay's limit, as for a dial.
                Warn(target, RefusalReason.ConnectionLimit, SocketError.TooManyOpenSockets);
                return new(null, RefusalReason.ConnectionLimit, "no descriptor for the name lookup");
            case ResolveStatus.DnsError when resolved.DnsErrorCode == SocketError.TimedOut:
                // The relay's own resolver heard nothing from any server within timeout × attempts.
                Warn(target, RefusalReason.DnsTimeout, SocketError.TimedOut);
                return new(null, RefusalReason.DnsTimeout, "no DNS server answered");
            default:
                var dnsError = resolved.DnsErrorCode ?? SocketError.HostNotFound;
                Warn(target, RefusalReason.DnsError, dnsError);
                return new(null, RefusalReason.DnsError, dnsError.ToString());
        }

        DialResult dialed;
        try
        {
            // One deadline for lookup and connect together: the dialer needs no timer.
            dialed = await TcpDialer.ConnectAsync(resolved.Addresses, target.Port, Timeout.InfiniteTimeSpan, time, deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return new(null, RefusalReason.ShuttingDown, RefusalReasonHttp.ShuttingDownDetail);
            }
            // The deadline, not the dialer, ends a dial that hears nothing: an upstream that fails as much as one that
            // refuses (a dead host, a firewall dropping SYNs), and the operator's to know of as well.
            Warn(target, RefusalReason.UpstreamTimeout, SocketError.TimedOut);
            return new(null, RefusalReason.UpstreamTimeout, "connect timed out");
        }
        if (dialed.Connection is { } connection)
        {
            if (routeBack is not null && dialed.Reached is { } reached && routeBack.OfDial(connection, reached) == RouteBack.Dial.Own)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
                Log.DestinationProhibited(logger, target.ToString(), $"{reached} is {OwnListener}");
                return new(null, RefusalReason.DestinationProhibited, $"reaches {OwnListener}");
            }
            return new(connection, default, "", dialed.Reached);
        }
        var reason = dialed.Error switch
        {
            DialError.Refused => RefusalReason.UpstreamRefused,
            DialError.TimedOut => RefusalReason.UpstreamTimeout,
            // No descriptor for the socket (EMFILE, ENFILE, or the runtime's headroom): this relay's limit, not the destination.
            _ when dialed.SocketError == SocketError.TooManyOpenSockets => RefusalReason.ConnectionLimit,
            _ => RefusalReason.UpstreamUnreachable,
        };
        Warn(target, reason, dialed.SocketError);
        return new(null, reason, dialed.SocketError.ToString());
    }

    private const string OwnListener = "this relay's own listener";

    private void Warn(HostPort target, RefusalReason reason, SocketError error)
    {
        if (!_warnings.TryTakeWarning(logger, 0, static (l, count, budget, _) => Log.UpstreamUnavailableSkipped(l, count, budget.PerWindow, (int)budget.Window.TotalSeconds)))
        {
            return;
        }
        Log.UpstreamUnavailable(logger, target.ToString(), reason.Name(), error);
    }

    // Destination only, never a client: these may be logged at Warning.
    private static partial class Log
    {
        [LoggerMessage(LogEvents.UpstreamUnavailable, LogLevel.Warning, "Upstream {Upstream} unavailable: {Reason} ({SocketError})", EventName = "UpstreamUnavailable")]
        public static partial void UpstreamUnavailable(ILogger logger, string upstream, string reason, SocketError socketError);

        [LoggerMessage(LogEvents.UpstreamUnavailableSkipped, LogLevel.Warning, "{Count} more upstreams were unavailable and not logged (at most {PerWindow} such lines every {Seconds} s; the connections.refused counters have them all)", EventName = "UpstreamUnavailableSkipped")]
        public static partial void UpstreamUnavailableSkipped(ILogger logger, int count, int perWindow, int seconds);

        [LoggerMessage(LogEvents.DestinationProhibited, LogLevel.Debug, "Destination {Upstream} refused by policy: {Detail}", EventName = "DestinationProhibited")]
        public static partial void DestinationProhibited(ILogger logger, string upstream, string detail);
    }

    /// <summary>
    /// A refused address's kind as the refusal's details and its log line say it ("a loopback address", "an unspecified
    /// address"). One of this host's own interface addresses is judged as loopback (<see cref="HostAddresses"/>), and said
    /// as what it is: "203.0.113.7 is a loopback address" would mislead whoever reads it.
    /// </summary>
    private static string Described(AddressCategory? category, IPAddress? address) => category switch
    {
        AddressCategory.Unspecified => "an unspecified address",
        AddressCategory.Loopback when address is not null && !IPAddress.IsLoopback(address) => "an address of the relay's own host",
        AddressCategory.Loopback => "a loopback address",
        AddressCategory.Private => "a private address",
        AddressCategory.LinkLocal => "a link-local address",
        AddressCategory.SharedCgnat => "a shared (CGNAT) address",
        AddressCategory.Multicast => "a multicast address",
        AddressCategory.Reserved => "a reserved address",
        AddressCategory.Metadata => "a cloud metadata address",
        _ => "a refused address",
    };
}
