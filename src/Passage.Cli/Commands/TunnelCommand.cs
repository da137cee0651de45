using System.CommandLine;
using Microsoft.Extensions.Logging;
using Passage.Cli.Hosting;
using Passage.Configuration;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;
using Passage.Tunnel;

namespace Passage.Cli.Commands;

/// <summary><c>passage tunnel --config FILE</c>: one end of a point-to-point HTTP tunnel.</summary>
internal static class TunnelCommand
{
    private static readonly Option<string> ConfigFile = new("--config") { Description = "JSON settings file (comments allowed): general, tls, transport, system and log sections", HelpName = "FILE", Required = true };
    private static readonly Option<bool> Check = new("--check") { Description = "Only check the settings: print the errors, or nothing and exit 0" };
    private static readonly Option<string?> LogLevel = LoggingSetup.LevelOption();
    private static readonly Option<string?> LogFormat = LoggingSetup.FormatOption();

    public static Command Create()
    {
        var command = new Command("tunnel", """
            Run one end of a point-to-point HTTP tunnel. The client end takes plain HTTP/1.1 from local services
            and carries it over one persistent, mutually authenticated HTTP/2 session (TLS 1.3) to the server end,
            which sends it to its backend. The session is opened at start, kept alive with pings and re-opened
            when lost; while it is down, requests get 503 with a Proxy-Status saying why.
            Each end pins the other by node ID (general.peer; `passage id FILE` prints it), or trusts a CA
            (tls.ca) for a name (general.peerHostname). Settings: --config FILE, overridden by PASSAGE__SECTION__KEY
            environment variables. Under systemd (Type=notify) it reports READY, STATUS and STOPPING and feeds the
            watchdog. The first SIGTERM (or SIGHUP, or Ctrl-C) lets requests in flight finish; a second stops at once.
            """)
        {
            ConfigFile, Check, LogLevel, LogFormat,
        };
        command.SetAction(RunAsync);
        return command;
    }

    /// <summary>Reads and validates everything; errors name their keys.</summary>
    internal static (TunnelOptions Tunnel, LogOptions Log, IReadOnlyList<string> Errors) Load(string configFile, IEnumerable<KeyValuePair<string, string?>> flags)
    {
        var (layers, errors) = CliSettings.Build(configFile, flags);
        var reader = new SettingsReader(layers);
        var tunnel = TunnelSettings.Read(reader, TunnelSettings.IsQuicSupported);
        // An identity file (tls.key without tls.cert) that is there but unusable: said now, naming its key, as the
        // relay's settings say it of relay.key, rather than at start without the key's name.
        if (tunnel.CertFile is null && tunnel.KeyFile.Length > 0 && NodeIdentity.Problem(tunnel.KeyFile) is { } problem)
        {
            reader.AddError("tls:key", problem);
        }
        // A certificate and key (tls.cert and tls.key) that do not load as one, or a certificate not meant for this end's
        // role: said now too. Only once the settings hold (the files exist, the mode is known).
        if (tunnel.CertFile is { } cert && reader.Errors.Count == 0 && TunnelCredentials.PairProblem(cert, tunnel.KeyFile, tunnel.Mode) is { } pair)
        {
            reader.AddMessage(pair);
        }
        var log = LogOptions.Read(reader, LoggingSetup.JournalAttached);
        return (tunnel, log, CliSettings.Errors(errors, [], reader));
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var flags = new List<KeyValuePair<string, string?>>();
        if (parse.GetValue(LogLevel) is { } level)
        {
            flags.Add(new("log:level", level));
        }
        if (parse.GetValue(LogFormat) is { } format)
        {
            flags.Add(new("log:format", format));
        }
        var (options, logOptions, errors) = Load(parse.GetValue(ConfigFile)!, flags);
        if (errors.Count > 0)
        {
            await RelayCommand.ReportErrors(errors).ConfigureAwait(false);
            return 1;
        }
        if (parse.GetValue(Check))
        {
            return 0;
        }

        using var signals = new ShutdownSignals();
        using var loggerFactory = LoggingSetup.Create(logOptions);
        var logger = loggerFactory.CreateLogger("Passage.Tunnel");
        ExposedSecrets.Warn(logger, ExposedSecrets.Of(options));
        using var notify = SdNotify.FromEnvironment();
        void Notify(string state)
        {
            if (notify?.Send(state) is { } error)
            {
                TunnelLog.NotifyFailed(logger, error);
            }
        }

        using var watchdogStop = new CancellationTokenSource();
        var watchdog = notify is not null && SdNotify.WatchdogInterval(options.WatchdogFactor) is { } every
            ? FeedWatchdogAsync(every, Notify, watchdogStop.Token)
            : Task.CompletedTask;
        try
        {
            if (options.Mode == TunnelMode.Server)
            {
                await RunServerAsync(options, loggerFactory, signals, Notify).ConfigureAwait(false);
            }
            else
            {
                await RunClientAsync(options, loggerFactory, signals, Notify).ConfigureAwait(false);
            }
            return 0;
        }
        catch (Exception e) when (StartFailure.IsEnvironmental(e))
        {
            var exitCode = StartFailure.Report(logger, e);
            Notify(SdNotify.Status($"cannot start: {e.Message}"));
            return exitCode;
        }
        finally
        {
            await watchdogStop.CancelAsync().ConfigureAwait(false);
            await watchdog.ConfigureAwait(false);
        }
    }

    private static async Task RunServerAsync(TunnelOptions options, ILoggerFactory loggerFactory, ShutdownSignals signals, Action<string> notify)
    {
        var server = await TunnelServer.StartAsync(options, loggerFactory).ConfigureAwait(false);
        await using (server.ConfigureAwait(false))
        {
            // The server end's sessions are those client ends hold: counted as they come and go.
            var admin = await StartAdminAsync(options, server.Metrics, signals, () => server.Metrics.IsUp ? null : "no session: the client end holds none", loggerFactory).ConfigureAwait(false);
            try
            {
                notify($"READY=1\n{SdNotify.Status($"listening on {server.LocalEndpoint}")}");
                await WaitForStopAsync(signals).ConfigureAwait(false);
                notify($"STOPPING=1\n{SdNotify.Status("stopping: letting requests in flight finish")}");
                await server.StopAsync(signals.HurryRequested).ConfigureAwait(false);
            }
            finally
            {
                await StopAdminAsync(admin).ConfigureAwait(false);
            }
        }
    }

    private static async Task RunClientAsync(TunnelOptions options, ILoggerFactory loggerFactory, ShutdownSignals signals, Action<string> notify)
    {
        var client = await TunnelClient.StartAsync(options, loggerFactory).ConfigureAwait(false);
        await using (client.ConfigureAwait(false))
        {
            // The session's status itself, as requests are answered by it: the session counter behind the metrics is moved
            // by a subscriber to its changes, so it is behind the status until that change's event has been raised.
            var admin = await StartAdminAsync(options, client.Metrics, signals, () => client.Status switch { { Phase: TunnelPhase.Up } => null, var down => down.ToString() }, loggerFactory).ConfigureAwait(false);
            try
            {
                await ServeClientAsync(options, client, signals, notify).ConfigureAwait(false);
            }
            finally
            {
                await StopAdminAsync(admin).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The client end from its start to the end of its drain: systemd told of its status, then of its stop.</summary>
    private static async Task ServeClientAsync(TunnelOptions options, TunnelClient client, ShutdownSignals signals, Action<string> notify)
    {
        var ready = 0;
        client.StatusChanged += status =>
        {
            if (Volatile.Read(ref ready) != 0 && status.Phase != TunnelPhase.Stopped)
            {
                notify(SdNotify.Status(status.ToString()));
            }
        };
        if (options.WaitForFirstAttempt)
        {
            // Bounded: an attempt ends within maxIdleTimeout.
            await Task.WhenAny(client.FirstAttempt, Task.Delay(Timeout.Infinite, signals.StopRequested)).ConfigureAwait(false);
        }
        Volatile.Write(ref ready, 1);
        notify($"READY=1\n{SdNotify.Status(client.Status.ToString())}");
        await WaitForStopAsync(signals).ConfigureAwait(false);
        Volatile.Write(ref ready, 0);
        notify($"STOPPING=1\n{SdNotify.Status("stopping: letting requests in flight finish")}");
        await client.StopAsync(signals.HurryRequested).ConfigureAwait(false);
    }

    /// <summary>
    /// The admin listener on <c>general.adminBindAddress</c>, when set: <c>/metrics</c> with this end's counters, and
    /// <c>/healthz</c> 200 while the session with the peer is up, 503 saying why not while it is down
    /// (<paramref name="down"/>: null while up) and while stopping. A start failure throws, named by its address, for the
    /// caller's start failure.
    /// </summary>
    private static async Task<AdminServer?> StartAdminAsync(TunnelOptions options, TunnelMetrics metrics, ShutdownSignals signals, Func<string?> down, ILoggerFactory loggerFactory) =>
        options.AdminBindAddress is { } endpoint
            ? await AdminServer.StartAsync(endpoint, metrics.Meter,
                () => signals.StopRequested.IsCancellationRequested ? "stopping" : down(), loggerFactory).ConfigureAwait(false)
            : null;

    /// <summary>Closes the admin listener, once the drain it reported on is over.</summary>
    private static async Task StopAdminAsync(AdminServer? admin)
    {
        if (admin is not null)
        {
            await admin.DisposeAsync().ConfigureAwait(false);
        }
    }

    private static async Task WaitForStopAsync(ShutdownSignals signals)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, signals.StopRequested).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM, SIGHUP or Ctrl-C: drain.
        }
    }

    private static async Task FeedWatchdogAsync(TimeSpan every, Action<string> notify, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(every);
        try
        {
            notify("WATCHDOG=1");
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                notify("WATCHDOG=1");
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }
}
