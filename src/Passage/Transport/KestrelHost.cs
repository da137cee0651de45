using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Passage.Telemetry;

namespace Passage.Transport;

/// <summary>
/// Builders for the Kestrel servers inside Passage (the admin listener, the HTTP/2 CONNECT server,
/// both ends of the tunnel): configured by Passage's code alone.
/// </summary>
/// <remarks>
/// The framework's default builders also read <c>appsettings.json</c> from the working directory
/// and the environment variables, and watch the working directory's whole tree for changes to that
/// file. So a stray file or variable (a <c>Kestrel:Endpoints</c> entry, say) would have opened
/// listeners nobody asked for, and a relay started in a large tree held an inotify watch on every
/// directory of it, once per server (and failed to start where the inotify limits are low).
/// </remarks>
internal static partial class KestrelHost
{
    /// <summary>
    /// A builder with Kestrel and routing and nothing else: no configuration sources, no file
    /// watching, logging through <paramref name="loggerFactory"/> (Passage's own), the windows of its rationed lines
    /// measured by <paramref name="time"/> (the system's clock when null) and the lines counting those left out naming the
    /// server as <paramref name="server"/> (<c>admin listener</c>): a process may run several, each with its own budget.
    /// </summary>
    public static WebApplicationBuilder CreateBuilder(string server, ILoggerFactory loggerFactory, TimeProvider? time = null)
    {
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { Args = [], EnvironmentName = "Production" });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Services.AddLogging();
        builder.Services.AddSingleton<ILoggerFactory>(new KestrelLoggerFactory(loggerFactory, time ?? TimeProvider.System, server));
        return builder;
    }

    /// <summary>
    /// Makes the grace given to the host's <c>StopAsync</c> the only limit on its stop. The host's own
    /// (<see cref="Microsoft.Extensions.Hosting.HostOptions.ShutdownTimeout"/>, 30 s of the wall clock by default) would
    /// otherwise cut requests and tunnels at 30 s, whatever drain timeout the operator set. For hosts whose every stop
    /// passes a grace (a disposal stops at once).
    /// </summary>
    public static void StopOnlyByGrace(WebApplicationBuilder builder) =>
        builder.Services.Configure<Microsoft.Extensions.Hosting.HostOptions>(host => host.ShutdownTimeout = Timeout.InfiniteTimeSpan);

    /// <summary>
    /// Passage's logger factory as Kestrel gets it: the same loggers, but Kestrel's event 60 of HTTP/2
    /// (<c>Http2QueueOperationsExceeded</c>) comes at Warning rather than Critical, and rationed, so does its event 24 of
    /// connections (<c>ConnectionRejected</c>), and the host's own report of a failed start comes at Debug.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Event 60 is Kestrel's guard against rapid reset (CVE-2023-44487) doing its job: a client opened and reset streams
    /// faster than Kestrel could clear them, and its connection is closed (GOAWAY, INTERNAL_ERROR). So any client could
    /// write Critical lines at will, several per connection: measured, 50 from eight connections of 1,500 HEADERS and
    /// RST_STREAM each. An operator should still hear of it, as of an upstream that fails: at most
    /// <see cref="RapidResetLinesPerWindow"/> lines every 10 s, then one line counting those left out. Each stream that
    /// reached the relay is counted too, refused <c>client_closed</c>. Kestrel's other HTTP/2 lines at Warning or above are
    /// left as they come: 61 and 63 are Kestrel's own invariants failing, which no frame a client sends leads to, and the
    /// flow-control queue's overflow (65), which a client that withholds WINDOW_UPDATE can cause, is Debug.
    /// </para>
    /// <para>
    /// Event 24 is written for every connection refused beyond a server's <c>MaxConcurrentConnections</c> (the admin
    /// listener's, either tunnel end's), so whoever could reach the port wrote Warning lines at will once the slots were
    /// full: measured at the admin listener, 29,719 lines in 3 s from one client opening and closing connections. At most
    /// <see cref="RefusalLinesPerWindow"/> every 10 s, then one line counting those left out.
    /// </para>
    /// </remarks>
    private sealed class KestrelLoggerFactory(ILoggerFactory inner, TimeProvider time, string server) : ILoggerFactory
    {
        private const string Http2Category = "Microsoft.AspNetCore.Server.Kestrel.Http2";
        private const int QueueOperationsExceeded = 60;
        private const string ConnectionsCategory = "Microsoft.AspNetCore.Server.Kestrel.Connections";
        private const int ConnectionRejected = 24;
        private const string HostCategory = "Microsoft.Extensions.Hosting.Internal.Host";
        private const int HostingStartupFailed = 11;

        private readonly LogBudget _rapidResets = new(RapidResetLinesPerWindow, Window, time);
        private readonly LogBudget _refusals = new(RefusalLinesPerWindow, Window, time);

        public ILogger CreateLogger(string categoryName)
        {
            var logger = inner.CreateLogger(categoryName);
            return categoryName switch
            {
                Http2Category => new Relevelled(logger, QueueOperationsExceeded, LogLevel.Warning, (_rapidResets, RapidResetLinesSkipped, server)),
                ConnectionsCategory => new Relevelled(logger, ConnectionRejected, LogLevel.Warning, (_refusals, RefusalLinesSkipped, server)),
                // The host's "Hosting failed to start" comes with the whole stack of the exception StartAsync throws on
                // to Passage's caller, which reports it in one line (a port already in use, say).
                HostCategory => new Relevelled(logger, HostingStartupFailed, LogLevel.Debug),
                _ => logger,
            };
        }

        public void AddProvider(ILoggerProvider provider) => inner.AddProvider(provider);

        public void Dispose()
        {
            // Passage's factory, not Kestrel's to dispose.
        }

        /// <summary>
        /// One of Kestrel's or the host's events at another level: <paramref name="eventId"/> at <paramref name="level"/>,
        /// and, when <paramref name="ration"/> is given, within its budget, those left out said with its line, which names
        /// the server; every other event as it comes.
        /// </summary>
        private sealed class Relevelled(ILogger inner, int eventId, LogLevel level, (LogBudget Budget, SaySkipped Say, string Server)? ration = null) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => inner.BeginScope(state);

            public bool IsEnabled(LogLevel logLevel) => inner.IsEnabled(logLevel);

            public void Log<TState>(LogLevel logLevel, EventId id, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (id.Id == eventId)
                {
                    logLevel = level;
                    if (!inner.IsEnabled(logLevel)
                        || (ration is var (budget, say, server) && !budget.TryTakeWarning(inner, (say, server), static (l, count, b, state) => state.say(l, count, state.server, b.PerWindow, (int)b.Window.TotalSeconds))))
                    {
                        return;
                    }
                }
                inner.Log(logLevel, id, state, exception, formatter);
            }
        }
    }

    /// <summary>Writes the line counting <c>count</c> lines of <c>server</c> left out, at most <c>perWindow</c> being written every <c>seconds</c>.</summary>
    private delegate void SaySkipped(ILogger logger, int count, string server, int perWindow, int seconds);

    /// <summary>The window of the rationed lines.</summary>
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(10);

    /// <summary>At most this many of Kestrel's rapid-reset lines every 10 s, per server.</summary>
    internal const int RapidResetLinesPerWindow = 10;

    /// <summary>At most this many of Kestrel's lines for a connection refused beyond the connection limit every 10 s, per server.</summary>
    internal const int RefusalLinesPerWindow = 10;

    [LoggerMessage(LogEvents.RapidResetLinesSkipped, LogLevel.Warning, "{Count} more HTTP/2 connections to the {Server} closed for resetting streams too fast were not logged (at most {PerWindow} such lines every {Seconds} s)", EventName = "RapidResetLinesSkipped")]
    private static partial void RapidResetLinesSkipped(ILogger logger, int count, string server, int perWindow, int seconds);

    [LoggerMessage(LogEvents.RefusalLinesSkipped, LogLevel.Warning, "{Count} more connections refused beyond the {Server}'s connection limit were not logged (at most {PerWindow} such lines every {Seconds} s)", EventName = "RefusalLinesSkipped")]
    private static partial void RefusalLinesSkipped(ILogger logger, int count, string server, int perWindow, int seconds);
}
