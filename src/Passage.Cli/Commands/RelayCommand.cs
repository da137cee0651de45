using System.CommandLine;
using System.Net;
using Microsoft.Extensions.Logging;
using Passage.Cli.Hosting;
using Passage.Configuration;
using Passage.Relay;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Telemetry;

namespace Passage.Cli.Commands;

/// <summary><c>passage relay</c>: run a relay. With no arguments, a CONNECT relay on 127.0.0.1:8443.</summary>
internal static partial class RelayCommand
{
    private static readonly Option<string?> ConfigFile = new("--config") { Description = "JSON settings file (comments allowed); flags override it", HelpName = "FILE" };
    private static readonly Option<string[]> Connect = new("--connect") { Description = "Serve CONNECT over TLS on ENDPOINT (HTTP/1.1 CONNECT, HTTP/2 CONNECT and extended CONNECT; repeatable). Default 127.0.0.1:8443 when no front door is given", HelpName = "ENDPOINT" };
    private static readonly Option<string[]> ConnectPlain = new("--connect-plain") { Description = "Serve CONNECT without TLS on ENDPOINT (repeatable); loopback only unless --insecure-plain", HelpName = "ENDPOINT" };
    private static readonly Option<bool> InsecurePlain = new("--insecure-plain") { Description = "Allow --connect-plain on a non-loopback address (credentials and destinations then cross the network in the clear)" };
    private static readonly Option<string?> Key = new("--key") { Description = "The relay's identity file (key and certificate), created on first start if missing. Default passage-data/relay.pem", HelpName = "FILE" };
    private static readonly Option<string[]> Name = new("--name") { Description = "A DNS name or IP address to put in a newly created certificate, so clients can verify it by name (repeatable)", HelpName = "NAME" };
    private static readonly Option<string[]> Allow = new("--allow") { Description = "Allow CONNECT destinations matching HOST:PORT; HOST is a name, *.suffix, *, ~regex or an IP; PORT a number, LOW-HIGH or * (repeatable). Default: any public host, port 443", HelpName = "PATTERN" };
    private static readonly Option<string[]> Deny = new("--deny") { Description = "Refuse CONNECT destinations matching HOST:PORT; wins over --allow (repeatable)", HelpName = "PATTERN" };
    private static readonly Option<bool> RequireTls = new("--require-tls") { Description = "Close a tunnel whose first bytes are not a TLS ClientHello (nothing is decrypted)" };
    private static readonly Option<string?> TokenFile = new("--token-file") { Description = "Require Proxy-Authorization: Bearer TOKEN (or Basic with the token as password); one token per line, re-read when the file changes", HelpName = "FILE" };
    private static readonly Option<string[]> ClientId = new("--client-id") { Description = "Require mutual TLS from a client with this node ID (repeatable)", HelpName = "ID" };
    private static readonly Option<string?> MinHttpVersion = new("--min-http-version") { Description = "1.1 (HTTP/1.1 and HTTP/2) or 2 (HTTP/2 only). Default 1.1", HelpName = "VERSION" };
    private static readonly Option<string?> RequestHeadTimeout = new("--request-head-timeout") { Description = "Time for a whole HTTP/1.1 request head, HTTP/2 connection start or header block (slowloris guard). Default 10s", HelpName = "DURATION" };
    private static readonly Option<string?> MaxRequestHeadBytes = new("--max-request-head") { Description = "Largest request head in bytes (HTTP/1.1 head, HTTP/2 header list). Default 8192", HelpName = "BYTES" };
    private static readonly Option<string?> MaxTunnels = new("--max-tunnels") { Description = "CONNECT tunnels open at once; one more gets 503. Default 4096", HelpName = "N" };
    private static readonly Option<string?> MaxTunnelsPerClient = new("--max-tunnels-per-client") { Description = "CONNECT tunnels open at once from one client (an IPv4 address, an IPv6 /64). Default 256", HelpName = "N" };
    private static readonly Option<string?> Admin = new("--admin") { Description = "Serve /metrics (Prometheus text) and /healthz on ENDPOINT; no authentication, so bind it to loopback or a management network", HelpName = "ENDPOINT" };
    private static readonly Option<string[]> Passthrough = new("--passthrough") { Description = "Listen for TLS pass-through on ENDPOINT, e.g. 127.0.0.1:9443 or [::]:443 (repeatable; port 0 picks a free port). None by default; 127.0.0.1:9443 when --route or --upstream is given without it", HelpName = "ENDPOINT" };
    private static readonly Option<string[]> Route = new("--route") { Description = "Route by SNI: PATTERN is a name, *.suffix or *; UPSTREAM is host:port, or :port for the SNI name itself on that port (repeatable)", HelpName = "PATTERN=UPSTREAM" };
    private static readonly Option<string?> Upstream = new("--upstream") { Description = "Send every connection to one fixed upstream instead of routing by SNI", HelpName = "HOST:PORT" };
    private static readonly Option<string[]> Map = new("--map") { Description = "Resolve HOST to ADDRESS[,ADDRESS...] without DNS (repeatable); the address is still checked by the policy", HelpName = "HOST=ADDRESS" };
    private static readonly Option<string[]> DnsServer = new("--dns-server") { Description = "Ask this DNS server for destination names instead of resolv.conf's (repeatable; the relay's own resolver, answers kept within their TTLs)", HelpName = "ADDRESS[:PORT]" };
    private static readonly Option<bool> AllowPrivate = new("--allow-private") { Description = "Allow loopback, private, link-local and CGNAT destinations (metadata, multicast and reserved ranges still need --allow-network)" };
    private static readonly Option<string[]> AllowNetwork = new("--allow-network") { Description = "Allow destinations in CIDR whatever their kind (repeatable)", HelpName = "CIDR" };
    private static readonly Option<string?> MaxConnections = new("--max-connections") { Description = $"Client connections open at once; one more is refused at once. Default {RelayLimits.DefaultMaxConnections}", HelpName = "N" };
    private static readonly Option<string?> MaxConnectionsPerClient = new("--max-connections-per-client") { Description = $"Client connections open at once from one client (an IPv4 address, an IPv6 /64); one more is refused at once. Default {RelayLimits.DefaultMaxConnectionsPerClient}", HelpName = "N" };
    private static readonly Option<string?> ConnectTimeout = new("--connect-timeout") { Description = "Time to resolve and connect to an upstream. Default 10s", HelpName = "DURATION" };
    private static readonly Option<string?> IdleTimeout = new("--idle-timeout") { Description = "Close a relayed connection after this long with no byte either way ('infinite' to never). Default 5m", HelpName = "DURATION" };
    private static readonly Option<string?> HandshakeTimeout = new("--handshake-timeout") { Description = "Time a client has for its TLS handshake (pass-through: its whole ClientHello). Default 5s", HelpName = "DURATION" };
    private static readonly Option<string?> DrainTimeout = new("--drain-timeout") { Description = "On SIGTERM, SIGHUP or Ctrl-C, how long open connections may finish before they are closed (a second signal closes them at once). Default 30s", HelpName = "DURATION" };
    private static readonly Option<string?> LogLevel = LoggingSetup.LevelOption(" (never pairs a client address with a destination)");
    private static readonly Option<string?> LogFormat = LoggingSetup.FormatOption();

    public static Command Create()
    {
        var command = new Command("relay", """
            Run a relay: it sees who connects, never what they say.
            CONNECT (--connect, --connect-plain): an HTTPS proxy with the relay's own key, serving HTTP/1.1
            CONNECT and HTTP/2 CONNECT, classic and extended (many tunnels over one connection). Destinations are checked
            by name and port (--allow, --deny) and by every resolved address; private ranges are refused
            unless allowed.
            Pass-through (--passthrough): reads the server name of each TLS ClientHello without terminating
            TLS and relays the connection to the upstream its route names.
            Durations: 500ms, 30s, 5m, 1h. Settings also come from --config FILE and PASSAGE__RELAY__KEY
            environment variables; flags win.
            With no arguments: a CONNECT relay on 127.0.0.1:8443 to any public host on port 443, its identity
            kept in ./passage-data/; it prints a curl command to try it.
            """)
        {
            ConfigFile, Connect, ConnectPlain, InsecurePlain, Key, Name, Allow, Deny, RequireTls, TokenFile, ClientId, MinHttpVersion,
            RequestHeadTimeout, MaxRequestHeadBytes, MaxTunnels, MaxTunnelsPerClient, Admin,
            Passthrough, Route, Upstream, Map, DnsServer, AllowPrivate, AllowNetwork,
            MaxConnections, MaxConnectionsPerClient, ConnectTimeout, IdleTimeout, HandshakeTimeout, DrainTimeout, LogLevel, LogFormat,
        };
        command.SetAction(RunAsync);
        return command;
    }

    /// <summary>Turns the flags into configuration keys (the same names as in the JSON file).</summary>
    internal static FlagSettings Flags(ParseResult parse)
    {
        var flags = new FlagSettings(parse);
        void List(Option<string[]> option, string key) => flags.List(option, key);
        void Scalar(Option<string?> option, string key) => flags.Scalar(option, key);
        void Switch(Option<bool> option, string key) => flags.Switch(option, key);

        List(Connect, "relay:connect");
        List(ConnectPlain, "relay:connectPlain");
        Switch(InsecurePlain, "relay:insecurePlain");
        Scalar(Key, "relay:key");
        List(Name, "relay:names");
        List(Allow, "relay:allow");
        List(Deny, "relay:deny");
        Switch(RequireTls, "relay:requireTls");
        Scalar(TokenFile, "relay:tokenFile");
        List(ClientId, "relay:clientIds");
        Scalar(MinHttpVersion, "relay:minHttpVersion");
        Scalar(RequestHeadTimeout, "relay:requestHeadTimeout");
        Scalar(MaxRequestHeadBytes, "relay:maxRequestHeadBytes");
        Scalar(MaxTunnels, "relay:maxTunnels");
        Scalar(MaxTunnelsPerClient, "relay:maxTunnelsPerClient");
        Scalar(Admin, "relay:admin");
        List(Passthrough, "relay:passthrough");
        flags.Pairs(Route, "relay:routes", '=', "PATTERN=UPSTREAM");
        Scalar(Upstream, "relay:upstream");
        flags.Pairs(Map, "relay:map", '=', "HOST=ADDRESS");
        List(DnsServer, "relay:dnsServers");
        Switch(AllowPrivate, "relay:allowPrivate");
        List(AllowNetwork, "relay:allowNetworks");
        Scalar(MaxConnections, "relay:maxConnections");
        Scalar(MaxConnectionsPerClient, "relay:maxConnectionsPerClient");
        Scalar(ConnectTimeout, "relay:connectTimeout");
        Scalar(IdleTimeout, "relay:idleTimeout");
        Scalar(HandshakeTimeout, "relay:handshakeTimeout");
        Scalar(DrainTimeout, "relay:drainTimeout");
        Scalar(LogLevel, "log:level");
        Scalar(LogFormat, "log:format");
        return flags;
    }

    /// <summary>Reads and validates everything; errors name their keys.</summary>
    internal static (RelayOptions Relay, LogOptions Log, IReadOnlyList<string> Errors) Load(string? configFile, IEnumerable<KeyValuePair<string, string?>> flags, IEnumerable<string> flagErrors)
    {
        var (layers, errors) = CliSettings.Build(configFile, flags);
        var reader = new SettingsReader(layers);
        var relay = RelaySettings.Read(reader);
        var log = LogOptions.Read(reader, LoggingSetup.JournalAttached);
        return (relay, log, CliSettings.Errors(errors, flagErrors, reader));
    }

    private static async Task<int> RunAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var flags = Flags(parse);
        var (options, logOptions, errors) = Load(parse.GetValue(ConfigFile), flags.Values, flags.Errors);
        if (errors.Count > 0)
        {
            await ReportErrors(errors).ConfigureAwait(false);
            return 1;
        }

        using var signals = new ShutdownSignals();
        using var loggerFactory = LoggingSetup.Create(logOptions);
        var logger = loggerFactory.CreateLogger("Passage.Relay");
        ExposedSecrets.Warn(logger, ExposedSecrets.Of(options));
        using var metrics = new RelayMetrics();
        // Under systemd with Type=notify (deploy/passage-relay.service): READY once every listener is bound, so that
        // `systemctl start` waits for it and fails when the relay cannot start (a port in use, a key it cannot read), where a
        // unit without it was "active" until the process exited. Best effort: a service manager that went away stops no relay.
        using var notify = SdNotify.FromEnvironment();
        RelayHost host;
        try
        {
            host = await RelayHost.StartAsync(options, loggerFactory, metrics).ConfigureAwait(false);
        }
        catch (Exception e) when (StartFailure.IsEnvironmental(e))
        {
            return StartFailure.Report(logger, e);
        }
        await using (host.ConfigureAwait(false))
        {
            if (host.Connect is { } connect)
            {
                // For whoever started it by hand. Standard output may be closed (`passage relay >&-`) or a pipe nobody
                // reads any more: the relay is running, and a banner it cannot print is no reason to stop it (the node ID
                // is also what `passage id` of the key prints).
                StandardOutput.TryWriteLine(Console.Out, ConnectBanner(connect, options.Connect!));
            }
            Notify(notify, logger, "READY=1");
            try
            {
                await Task.Delay(Timeout.Infinite, signals.StopRequested).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // SIGTERM, SIGHUP or Ctrl-C: drain.
            }
            Notify(notify, logger, "STOPPING=1");
            await host.StopAsync(signals.HurryRequested).ConfigureAwait(false);
        }
        return 0;
    }

    /// <summary>
    /// Sends <paramref name="state"/> to the service manager, if any; one it cannot be sent to (NOTIFY_SOCKET naming no socket,
    /// or one nobody listens at) is logged, as the tunnel logs it: the relay went on without a word, and a unit of
    /// Type=notify was killed at its start timeout with nothing in the log to say why.
    /// </summary>
    private static void Notify(SdNotify? notify, ILogger logger, string state)
    {
        if (notify?.Send(state) is { } error)
        {
            NotifyFailed(logger, error);
        }
    }

    [LoggerMessage(LogEvents.RelayNotifyFailed, Microsoft.Extensions.Logging.LogLevel.Warning, "could not notify the service manager at NOTIFY_SOCKET: {Error}", EventName = "RelayNotifyFailed")]
    private static partial void NotifyFailed(ILogger logger, string error);

    /// <summary>
    /// What a user needs to use a CONNECT relay: its ID, its pin, and a curl command for each door that works as printed,
    /// or, where the relay asks what a command line cannot hold (a token, a client key) or curl cannot speak, what to add.
    /// </summary>
    internal static string ConnectBanner(ConnectRelay relay, ConnectOptions options)
    {
        var pin = "sha256//" + Convert.ToBase64String(relay.NodeId.Hash);
        var text = new System.Text.StringBuilder();
        text.AppendLine($"node ID  {relay.NodeId}");
        text.AppendLine($"pin      {pin}");
        var certificate = Path.GetRelativePath(Environment.CurrentDirectory, relay.CertificatePath);
        text.AppendLine(relay.CertificateProblem is { } problem
            // No curl command without the file: curl before 8.10 ignores --proxy-pinnedpubkey, so with --proxy-insecure
            // it would verify nothing.
            ? $"cert     {certificate} cannot be written ({problem}), so curl cannot verify the relay; clients that pin the node ID can"
            : $"cert     {certificate}");
        // A token is not printed (the banner goes to logs too): the command reads it from the shell's TOKEN.
        var token = options.TokenFile is null ? "" : " --proxy-header \"Proxy-Authorization: Bearer $TOKEN\"";
        var http2Only = options.MinHttpVersion >= 2;
        foreach (var endpoint in relay.CertificateProblem is null ? relay.LocalEndpoints : [])
        {
            var address = Reachable(endpoint.Address);
            var proxy = $"https://{new IPEndPoint(address, endpoint.Port)}";
            // --proxy-cacert verifies the relay on every curl, by name; curl 8.10 and later also check the pin.
            text.AppendLine(relay.CertificateNames(address)
                ? $"try      curl -p -x {proxy} --proxy-cacert {certificate} --proxy-pinnedpubkey '{pin}'{(http2Only ? " --proxy-http2" : "")}{token} https://{Destination}/"
                : $"note     {certificate} does not name {address}, so curl cannot verify the relay at {proxy}; clients that pin the node ID can (a key made with --name {address} would serve both)");
        }
        foreach (var endpoint in relay.LocalPlainEndpoints)
        {
            var proxy = $"http://{new IPEndPoint(Reachable(endpoint.Address), endpoint.Port)}";
            text.AppendLine(http2Only
                ? $"note     {proxy} serves HTTP/2 only (relay.minHttpVersion 2), which curl does not speak to a proxy without TLS"
                : $"plain    curl -p -x {proxy}{token} https://{Destination}/");
        }
        if (options.TokenFile is { } tokens)
        {
            text.AppendLine($"token    the relay asks for a token: set TOKEN to one of the lines of {tokens} first");
        }
        if (http2Only)
        {
            text.AppendLine("http2    the relay serves HTTP/2 only: --proxy-http2 needs curl 8.1 or later");
        }
        if (options.ClientIds.Count > 0)
        {
            text.AppendLine("clients  the relay serves only the client IDs it lists: add --proxy-cert FILE, FILE a key (passage keygen) whose ID is one of them");
        }
        if (DestinationRules.Parse(options.Allow, options.Deny, "allow", "deny", new List<string>()).Check(Destination, 443).Status != RuleStatus.Allowed)
        {
            text.AppendLine($"allow    {Destination}:443 is not a destination the relay allows (relay.allow, relay.deny): name one it does instead");
        }
        return text.ToString().TrimEnd();
    }

    /// <summary>The destination the banner's commands ask for.</summary>
    private const string Destination = "example.org";

    /// <summary>
    /// Where a command run on this machine reaches a listener bound to <paramref name="bound"/>: 127.0.0.1 for the
    /// unspecified addresses ([::] is bound dual-mode, FrontDoorListener, so 127.0.0.1 reaches it too; and it is there
    /// where ::1 may not be, in a container with IPv6 off, while every new certificate names it), else the address itself.
    /// </summary>
    private static IPAddress Reachable(IPAddress bound) =>
        bound.Equals(IPAddress.Any) || bound.Equals(IPAddress.IPv6Any) ? IPAddress.Loopback : bound;

    /// <summary>
    /// Writes <paramref name="errors"/> to standard error, each on its line with its control characters escaped as the
    /// log's are (<see cref="EscapingLoggerFactory.Escape"/>): an error quotes the value it refuses, and a value
    /// holding a line break or an escape sequence could otherwise forge another error line or drive the terminal.
    /// </summary>
    internal static async Task ReportErrors(IReadOnlyList<string> errors)
    {
        await Console.Error.WriteLineAsync($"passage: the configuration has {errors.Count} error{(errors.Count == 1 ? "" : "s")}; nothing was started:").ConfigureAwait(false);
        foreach (var error in errors)
        {
            await Console.Error.WriteLineAsync($"  {EscapingLoggerFactory.Escape(error)}").ConfigureAwait(false);
        }
    }
}
