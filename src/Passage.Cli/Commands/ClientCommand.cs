using System.CommandLine;
using Microsoft.Extensions.Logging;
using Passage.Cli.Hosting;
using Passage.Client;
using Passage.Configuration;
using Passage.Identity;
using Passage.Relay;
using Passage.Telemetry;

namespace Passage.Cli.Commands;

/// <summary><c>passage client</c>: local SOCKS5 and HTTP proxies whose every connection is a tunnel through pinned relays.</summary>
internal static partial class ClientCommand
{
    private static readonly Option<string?> ConfigFile = new("--config") { Description = "JSON settings file (comments allowed); flags override it", HelpName = "FILE" };
    private static readonly Option<string[]> Relay = new("--relay") { Description = "A relay, pinned by its node ID: ID@HOST:PORT (repeatable; listed order is the failover order until round trips are measured)", HelpName = "ID@HOST:PORT" };
    private static readonly Option<string[]> Socks = new("--socks") { Description = "Serve SOCKS5 on ENDPOINT (repeatable; 'off' for none). Default 127.0.0.1:1080", HelpName = "ENDPOINT" };
    private static readonly Option<string[]> Http = new("--http") { Description = "Serve an HTTP proxy (CONNECT and http:// requests) on ENDPOINT (repeatable; 'off' for none). Default 127.0.0.1:8118", HelpName = "ENDPOINT" };
    private static readonly Option<string[]> SocksUser = new("--socks-user") { Description = "Require SOCKS5 username/password (RFC 1929); repeatable", HelpName = "USER:PASSWORD" };
    private static readonly Option<string[]> HttpUser = new("--http-user") { Description = "Require HTTP proxy Basic authentication (Proxy-Authorization, RFC 7617); repeatable", HelpName = "USER:PASSWORD" };
    private static readonly Option<bool> InsecureOpen = new("--insecure-open") { Description = "Allow the HTTP proxy without --http-user, or SOCKS5 without --socks-user, on a non-loopback address (anyone who reaches it can then use your relays and token)" };
    private static readonly Option<string?> Key = new("--key") { Description = "Present this identity file's key to relays that ask for one (mutual TLS: a relay's --client-id lists the node IDs it serves); created on first start. Default none", HelpName = "FILE" };
    private static readonly Option<string?> Token = new("--token") { Description = "A bearer token for relays that require one", HelpName = "TOKEN" };
    private static readonly Option<string?> ConnectTimeout = new("--connect-timeout") { Description = "Time to reach a relay. Default 5s", HelpName = "DURATION" };
    private static readonly Option<string?> IdleTimeout = new("--idle-timeout") { Description = "Close a tunnel after this long with no byte either way. Default 5m", HelpName = "DURATION" };
    private static readonly Option<string?> Admin = new("--admin") { Description = "Serve /metrics (Prometheus text) and /healthz (200 while a relay is usable) on ENDPOINT; no authentication, so bind it to loopback or a management network", HelpName = "ENDPOINT" };
    private static readonly Option<string?> LogLevel = LoggingSetup.LevelOption();
    private static readonly Option<string?> LogFormat = LoggingSetup.FormatOption();

    public static Command Create()
    {
        var command = new Command("client", """
            Run local proxies whose every connection is a tunnel through Passage relays: SOCKS5 (domain names go
            to the relay unresolved: no DNS lookup happens here) and an HTTP proxy. Each relay is pinned by its
            node ID and reached over one persistent HTTP/2 connection; new tunnels go to the fastest healthy
            relay, and a relay that fails is skipped until it answers again.
              passage client --relay ID@relay.example:8443
              curl --socks5-hostname 127.0.0.1:1080 https://example.org/
            """)
        {
            ConfigFile, Relay, Socks, Http, SocksUser, HttpUser, InsecureOpen, Key, Token, ConnectTimeout, IdleTimeout, Admin, LogLevel, LogFormat,
        };
        command.SetAction(RunAsync);
        return command;
    }

    /// <summary>Turns the flags into configuration keys (the same names as in the JSON file).</summary>
    internal static FlagSettings Flags(ParseResult parse)
    {
        var flags = new FlagSettings(parse);
        flags.List(Relay, "client:relays");
        flags.List(Socks, "client:socks");
        flags.List(Http, "client:http");
        flags.Pairs(SocksUser, "client:socksUsers", ':', "USER:PASSWORD", secretValues: true);
        flags.Pairs(HttpUser, "client:httpUsers", ':', "USER:PASSWORD", secretValues: true);
        flags.Switch(InsecureOpen, "client:insecureOpen");
        flags.Scalar(Key, "client:key");
        flags.Scalar(Token, "client:token");
        flags.Scalar(ConnectTimeout, "client:connectTimeout");
        flags.Scalar(IdleTimeout, "client:idleTimeout");
        flags.Scalar(Admin, "client:admin");
        flags.Scalar(LogLevel, "log:level");
        flags.Scalar(LogFormat, "log:format");
        return flags;
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var flags = Flags(parse);
        var flagErrors = flags.Errors;
        var (layers, errors) = CliSettings.Build(parse.GetValue(ConfigFile), flags.Values);
        var reader = new SettingsReader(layers);
        var (clientOptions, proxyOptions, keyFile) = ClientSettings.Read(reader);
        var logOptions = LogOptions.Read(reader, LoggingSetup.JournalAttached);
        var all = CliSettings.Errors(errors, flagErrors, reader);
        if (all.Count > 0)
        {
            await RelayCommand.ReportErrors(all).ConfigureAwait(false);
            return 1;
        }

        using var signals = new ShutdownSignals();
        using var loggerFactory = LoggingSetup.Create(logOptions);
        var logger = loggerFactory.CreateLogger("Passage.Client");
        ExposedSecrets.Warn(logger, ExposedSecrets.Of(reader));
        // Under systemd with Type=notify (deploy/passage-client.service): READY once the local proxies listen, as the relay's.
        using var notify = SdNotify.FromEnvironment();
        NodeIdentity? identity = null;
        if (keyFile is not null)
        {
            try
            {
                identity = NodeIdentity.LoadOrCreate(keyFile, names: null, out var created);
                Identity(logger, identity.NodeId.ToString(), created ? $" (new identity written to {keyFile})" : "");
            }
            catch (Exception e) when (StartFailure.IsEnvironmental(e))
            {
                // Changed since the settings were checked, or not writable where it is to be made.
                return StartFailure.Report(logger, new InvalidDataException($"client.key: {e.Message}", e));
            }
        }
        using var _ = identity;
        await using var client = new PassageClient(clientOptions with { Identity = identity }, loggerFactory);
        try
        {
            await client.StartAsync(signals.StopRequested).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (signals.StopRequested.IsCancellationRequested)
        {
            // SIGTERM, SIGHUP or Ctrl-C while the relays were first probed: a stop asked for, as later.
            return 0;
        }
        catch (Exception e) when (StartFailure.IsEnvironmental(e))
        {
            return StartFailure.Report(logger, e);
        }
        foreach (var (relay, up, rtt) in client.Status)
        {
            RelayStatus(logger, relay, up ? "up" : "down", rtt is { } ms ? $", {ms:0.0} ms" : "");
        }
        LocalProxy proxy;
        try
        {
            proxy = LocalProxy.Start(client, proxyOptions, loggerFactory);
        }
        catch (Exception e) when (StartFailure.IsEnvironmental(e))
        {
            return StartFailure.Report(logger, e);
        }
        await using (proxy.ConfigureAwait(false))
        {
            AdminServer? admin = null;
            if (proxyOptions.AdminEndpoint is { } adminEndpoint)
            {
                try
                {
                    admin = await AdminServer.StartAsync(adminEndpoint, client.Metrics.Meter, () => Unhealthy(client, signals), loggerFactory).ConfigureAwait(false);
                }
                catch (Exception e) when (StartFailure.IsEnvironmental(e))
                {
                    return StartFailure.Report(logger, e);
                }
            }
            notify?.Send("READY=1");
            try
            {
                try
                {
                    await Task.Delay(Timeout.Infinite, signals.StopRequested).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    // SIGTERM, SIGHUP or Ctrl-C.
                }
                notify?.Send("STOPPING=1");
                // The admin listener stays while the front doors drain, answering 503 "stopping".
                await proxy.StopAsync(signals.HurryRequested).ConfigureAwait(false);
            }
            finally
            {
                // Closed whatever the drain threw, as the proxy and the client around it are.
                if (admin is not null)
                {
                    await admin.DisposeAsync().ConfigureAwait(false);
                }
            }
        }
        return 0;
    }

    /// <summary>
    /// Why <c>/healthz</c> answers 503: stopping, or no relay that would take a tunnel (every one down, or refusing this
    /// client's credentials); null while one would.
    /// </summary>
    private static string? Unhealthy(PassageClient client, ShutdownSignals signals) =>
        signals.StopRequested.IsCancellationRequested ? "stopping"
        : client.RelayStates is { Up: 0 } states ? $"no usable relay ({states.Down} down, {states.Refusing} refusing this client's credentials)"
        : null;

    [LoggerMessage(Passage.Telemetry.LogEvents.ClientIdentity, Microsoft.Extensions.Logging.LogLevel.Information, "This client's node ID is {NodeId}{Created}: presented to relays that ask for one", EventName = "Identity")]
    private static partial void Identity(ILogger logger, string nodeId, string created);

    [LoggerMessage(Passage.Telemetry.LogEvents.ClientRelayStatus, Microsoft.Extensions.Logging.LogLevel.Information, "Relay {Relay}: {State}{Rtt}", EventName = "RelayStatus")]
    private static partial void RelayStatus(ILogger logger, string relay, string state, string rtt);
}
