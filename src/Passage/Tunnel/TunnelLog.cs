using System.Net;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Tunnel;

/// <summary>The tunnel's log lines. At Information no line names a request's target or a local client's address.</summary>
internal static partial class TunnelLog
{
    [LoggerMessage(EventId = LogEvents.TunnelListening, EventName = "TunnelListening", Level = LogLevel.Information,
        Message = "tunnel {Mode} listening on {Endpoint} ({What})")]
    public static partial void Listening(ILogger logger, string mode, IPEndPoint endpoint, string what);

    [LoggerMessage(EventId = LogEvents.TunnelIdentity, EventName = "TunnelIdentity", Level = LogLevel.Information,
        Message = "this end's node ID is {NodeId}{Created}; accepting only {Expected}")]
    public static partial void Identity(ILogger logger, string nodeId, string created, string expected);

    [LoggerMessage(EventId = LogEvents.TunnelSessionUp, EventName = "TunnelSessionUp", Level = LogLevel.Information,
        Message = "tunnel up: session with {Server} established")]
    public static partial void SessionUp(ILogger logger, string server);

    [LoggerMessage(EventId = LogEvents.TunnelSessionDown, EventName = "TunnelSessionDown", Level = LogLevel.Warning,
        Message = "tunnel down: {ErrorType}: {Details}; retrying every {Interval}")]
    public static partial void SessionDown(ILogger logger, string errorType, string details, string interval);

    [LoggerMessage(EventId = LogEvents.TunnelPeerRefused, EventName = "TunnelPeerRefused", Level = LogLevel.Warning,
        Message = "refused a peer presenting {Presented}; expected {Expected}")]
    public static partial void PeerRefused(ILogger logger, string presented, string expected);

    [LoggerMessage(EventId = LogEvents.TunnelExchangeFailed, EventName = "TunnelExchangeFailed", Level = LogLevel.Warning,
        Message = "request not delivered: {ErrorType}: {Details}")]
    public static partial void ExchangeFailed(ILogger logger, string errorType, string details);

    [LoggerMessage(EventId = LogEvents.TunnelRequestFailed, EventName = "TunnelRequestFailed", Level = LogLevel.Debug,
        Message = "request cut off: {Where}: {Why}")]
    public static partial void RequestFailed(ILogger logger, string where, string why);

    [LoggerMessage(EventId = LogEvents.TunnelStopping, EventName = "TunnelStopping", Level = LogLevel.Information,
        Message = "stopping: no new requests; requests in flight may finish for {Drain} (a second signal stops at once)")]
    public static partial void Stopping(ILogger logger, string drain);

    [LoggerMessage(EventId = LogEvents.TunnelStopped, EventName = "TunnelStopped", Level = LogLevel.Information,
        Message = "stopped")]
    public static partial void Stopped(ILogger logger);

    [LoggerMessage(EventId = LogEvents.TunnelNotifyFailed, EventName = "TunnelNotifyFailed", Level = LogLevel.Warning,
        Message = "could not notify the service manager at NOTIFY_SOCKET: {Error}")]
    public static partial void NotifyFailed(ILogger logger, string error);

    [LoggerMessage(EventId = LogEvents.TunnelUpgradeFailed, EventName = "TunnelUpgradeFailed", Level = LogLevel.Debug,
        Message = "protocol upgrade ({Protocol}) ended: {End}")]
    public static partial void UpgradeEnded(ILogger logger, string protocol, string end);

    [LoggerMessage(EventId = LogEvents.TunnelBackendTimedOut, EventName = "TunnelBackendTimedOut", Level = LogLevel.Warning,
        Message = "the backend kept a request waiting {Waited} without a byte (system.backendTimeout): {Outcome}")]
    public static partial void BackendTimedOut(ILogger logger, string waited, string outcome);

    [LoggerMessage(EventId = LogEvents.TunnelAnswerRefused, EventName = "TunnelAnswerRefused", Level = LogLevel.Warning,
        Message = "the request was delivered, but its answer could not be passed on: {ErrorType}: {Details}; the client got 502")]
    public static partial void AnswerRefused(ILogger logger, string errorType, string details);

    [LoggerMessage(EventId = LogEvents.TunnelStatusSubscriberFailed, EventName = "TunnelStatusSubscriberFailed", Level = LogLevel.Warning,
        Message = "a subscriber to the tunnel's status failed ({Error}); later changes are still raised, and further failures not logged")]
    public static partial void StatusSubscriberFailed(ILogger logger, string error);

    [LoggerMessage(EventId = LogEvents.TunnelLoopDetected, EventName = "TunnelLoopDetected", Level = LogLevel.Warning,
        Message = "a request came round to the {End} again (its Via names this end, {Pseudonym}): where the tunnel sends requests leads back to it; answered 502")]
    public static partial void LoopDetected(ILogger logger, string end, string pseudonym);

    [LoggerMessage(EventId = LogEvents.TunnelLinesSkipped, EventName = "TunnelLinesSkipped", Level = LogLevel.Warning,
        Message = "{Count} more '{What}' lines were not logged (at most {PerWindow} every {Seconds} s)")]
    private static partial void Skipped(ILogger logger, int count, string what, int perWindow, int seconds);

    /// <summary>At most this many of each rationed warning every 10 s, per logger.</summary>
    internal const int RationPerWindow = 10;

    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_peerRefusals = new();
    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_exchangeFailures = new();
    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_backendTimeouts = new();
    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_sessionDowns = new();
    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_answersRefused = new();
    private static readonly ConditionalWeakTable<ILogger, LogBudget> s_loops = new();

    /// <summary>
    /// <see cref="PeerRefused"/>, rationed: anyone who can reach the port can present a certificate of their own
    /// making, as often as they like, and its names are theirs.
    /// </summary>
    public static void PeerRefusedRationed(ILogger logger, string presented, string expected)
    {
        if (Ration(logger, s_peerRefusals, "refused a peer"))
        {
            PeerRefused(logger, presented, expected);
        }
    }

    /// <summary><see cref="ExchangeFailed"/>, rationed: an application can send requests that fail as often as it likes.</summary>
    public static void ExchangeFailedRationed(ILogger logger, string errorType, string details)
    {
        if (Ration(logger, s_exchangeFailures, "request not delivered"))
        {
            ExchangeFailed(logger, errorType, details);
        }
    }

    /// <summary><see cref="AnswerRefused"/>, rationed: a backend answers as often as it is asked.</summary>
    public static void AnswerRefusedRationed(ILogger logger, string errorType, string details)
    {
        if (Ration(logger, s_answersRefused, "answer could not be passed on"))
        {
            AnswerRefused(logger, errorType, details);
        }
    }

    /// <summary><see cref="LoopDetected"/>, rationed: every request of a tunnel that leads back to itself comes round.</summary>
    public static void LoopDetectedRationed(ILogger logger, string end, string pseudonym)
    {
        if (Ration(logger, s_loops, "a request came round"))
        {
            LoopDetected(logger, end, pseudonym);
        }
    }

    /// <summary><see cref="BackendTimedOut"/>, rationed: a stuck backend holds up every request sent to it.</summary>
    public static void BackendTimedOutRationed(ILogger logger, string waited, string outcome)
    {
        if (Ration(logger, s_backendTimeouts, "the backend kept a request waiting"))
        {
            BackendTimedOut(logger, waited, outcome);
        }
    }

    /// <summary>
    /// <see cref="SessionDown"/>, rationed: it is written once per change of cause, and a cause that keeps changing (a
    /// link that comes and goes, a peer that fails in turns) would otherwise write one every <c>connectInterval</c>.
    /// </summary>
    public static void SessionDownRationed(ILogger logger, string errorType, string details, string interval)
    {
        if (Ration(logger, s_sessionDowns, "tunnel down"))
        {
            SessionDown(logger, errorType, details, interval);
        }
    }

    private static bool Ration(ILogger logger, ConditionalWeakTable<ILogger, LogBudget> budgets, string what)
    {
        var budget = budgets.GetValue(logger, static _ => new LogBudget(RationPerWindow, TimeSpan.FromSeconds(10), TimeProvider.System));
        return budget.TryTakeWarning(logger, what, static (l, count, b, w) => Skipped(l, count, w, b.PerWindow, (int)b.Window.TotalSeconds));
    }
}
