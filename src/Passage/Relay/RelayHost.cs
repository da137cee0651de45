using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;
using Passage.Telemetry;

namespace Passage.Relay;

/// <summary>
/// Everything <c>passage relay</c> runs, for embedding: the configured front doors (pass-through,
/// CONNECT), the admin listener, one set of counters, one destination policy.
/// </summary>
public sealed partial class RelayHost : IAsyncDisposable
{
    private readonly RelayOptions _options;
    private readonly RelayMetrics _metrics;
    private PassthroughRelay? _passthrough;
    private ConnectRelay? _connect;
    private AdminServer? _admin;
    private PipeRefusals? _pipeRefusals;
    private volatile bool _stopping;

    private RelayHost(RelayOptions options, RelayMetrics metrics)
    {
        _options = options;
        _metrics = metrics;
    }

    /// <summary>The pass-through front door, when configured.</summary>
    public PassthroughRelay? Passthrough => _passthrough;

    /// <summary>The CONNECT front door, when configured.</summary>
    public ConnectRelay? Connect => _connect;

    /// <summary>The admin listener's address, when configured.</summary>
    public IPEndPoint? AdminEndpoint => _admin?.LocalEndpoint;

    /// <summary>
    /// <paramref name="options"/> as a relay started in this process runs them: its caps fitted to the open-file limit
    /// (<see cref="DescriptorBudget"/>), then its HTTP/2 tunnels' receive window to the memory the process may use
    /// (<see cref="MemoryBudget"/>, for the tunnels that fit), each change logged to <paramref name="logger"/>.
    /// <see cref="StartAsync"/> runs with these; <c>passage config check</c> shows where they differ from the configured.
    /// </summary>
    internal static RelayOptions Fit(RelayOptions options, ILogger logger)
    {
        options = DescriptorBudget.Fit(options, Transport.OpenFileLimit.Current, logger);
        return MemoryBudget.Fit(options, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes, logger);
    }

    /// <summary>
    /// Starts every configured front door. Throws <see cref="IOException"/> naming the front door and endpoint when one
    /// cannot be bound (the admin listener's own: Kestrel's, naming its address), after closing whatever had started.
    /// </summary>
    public static async Task<RelayHost> StartAsync(RelayOptions options, ILoggerFactory? loggerFactory = null, RelayMetrics? metrics = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        loggerFactory ??= NullLoggerFactory.Instance;
        ILogger logger = loggerFactory.CreateLogger<RelayHost>();
        options = Fit(options, logger);
        LogResolver(logger, options.Destinations.Dns);
        // Only pass-through and plain CONNECT have a plain socket at both ends.
        var splices = options.Limits.ZeroCopy && (options.Passthrough is not null || options.Connect is { PlainEndpoints.Count: > 0 })
            && Transport.LinuxSplice.IsAvailable;
        LogSplicing(logger, splices);
        var host = new RelayHost(options, metrics ?? new RelayMetrics());
        // This host's addresses count as loopback in every destination check: read them before the first dial waits.
        if (!Destinations.HostAddresses.ReadNow())
        {
            HostAddressesUnread(logger);
        }
        var resolver = new DestinationResolver(
            new AddressPolicy(options.Destinations.AllowPrivate, options.Destinations.AllowNetworks),
            options.Destinations.Map,
            dnsCache: options.Destinations.DnsCache,
            timeProvider: timeProvider,
            metrics: host._metrics,
            dns: options.Destinations.Dns);
        // Disposed with the host, on a failed start too.
        host._pipeRefusals = splices ? new PipeRefusals(logger) : null;
        try
        {
            if (options.Passthrough is { } passthrough)
            {
                host._passthrough = new PassthroughRelay(passthrough, options.Limits, resolver, loggerFactory, host._metrics, timeProvider);
                host._passthrough.Start();
            }
            if (options.Connect is { } connect)
            {
                host._connect = ConnectRelay.Create(connect, options.Limits, resolver, loggerFactory, host._metrics, timeProvider);
                await host._connect.StartAsync().ConfigureAwait(false);
            }
            if (options.AdminEndpoint is { } admin)
            {
                host._admin = await AdminServer.StartAsync(admin, host._metrics, () => !host._stopping, loggerFactory).ConfigureAwait(false);
            }
        }
        catch
        {
            await host.DisposeAsync().ConfigureAwait(false);
            throw;
        }
        return host;
    }

    /// <summary>Stops accepting everywhere and drains (see <see cref="RelayLimits.DrainTimeout"/>).</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        _stopping = true;
        var stops = new List<Task>();
        if (_passthrough is not null)
        {
            stops.Add(_passthrough.StopAsync(cancellationToken));
        }
        if (_connect is not null)
        {
            stops.Add(_connect.StopAsync(cancellationToken));
        }
        await Task.WhenAll(stops).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        _stopping = true;
        _pipeRefusals?.Dispose();
        if (_passthrough is not null)
        {
            await _passthrough.DisposeAsync().ConfigureAwait(false);
        }
        if (_connect is not null)
        {
            await _connect.DisposeAsync().ConfigureAwait(false);
        }
        if (_admin is not null)
        {
            await _admin.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Says once, at start, which resolver looks destination names up and whom it asks (no client data).</summary>
    private static void LogResolver(ILogger logger, ResolverConf? dns)
    {
        if (dns is null)
        {
            SystemResolver(logger);
        }
        else
        {
            OwnResolver(
                logger,
                string.Join(", ", dns.Servers),
                dns.GivenServers is null ? dns.SourcePath ?? "settings" : "relay.dnsServers",
                dns.Search.Count == 0 ? "none" : string.Join(" ", dns.Search),
                dns.Timeout.TotalSeconds,
                dns.Attempts);
        }
    }

    /// <summary>
    /// Says once, at start, how large the splice pipes may be and how many may be open: the figures an operator of a
    /// relay carrying many bulk transfers at once needs to decide whether to raise fs.pipe-user-pages-soft.
    /// </summary>
    private static void LogSplicing(ILogger logger, bool splices)
    {
        if (!splices)
        {
            return;
        }
        var maxOpen = Transport.SplicePipe.MaxOpen;
        var cap = maxOpen == long.MaxValue ? "no cap on open pipes" : $"at most {maxOpen} open (a sixteenth of the open-file limit, two descriptors each)";
        var budget = Transport.SplicePipe.LargeBudget;
        if (budget > 0)
        {
            Splicing(logger, Transport.PumpOptions.DefaultPipeSize / 1024, budget / (1024.0 * 1024), cap);
        }
        else
        {
            SplicingDefaultPipes(logger, cap);
        }
    }

    /// <summary>
    /// Says once per cause, when it first happens, that a spliced direction found no pipe and copied instead: the
    /// counter (<c>passage_relay_splice_fallbacks_total{reason="no_pipe"}</c>) goes on counting, but nobody reads a
    /// counter they do not know to look at. The pipes are the process's, so the news comes from
    /// <see cref="Transport.SpliceFallbacks.PipeRefused"/>; each relay says it once in its own log.
    /// </summary>
    private sealed class PipeRefusals : IDisposable
    {
        private readonly ILogger _logger;
        private int _quotaSaid;
        private int _descriptorsSaid;

        public PipeRefusals(ILogger logger)
        {
            _logger = logger;
            Transport.SpliceFallbacks.PipeRefused += OnRefused;
        }

        public void Dispose() => Transport.SpliceFallbacks.PipeRefused -= OnRefused;

        private void OnRefused(int errno)
        {
            // Called for every burst copied for want of a pipe: a read, and one exchange the first time.
            if (errno == Transport.LinuxSplice.ENOBUFS)
            {
                if (Volatile.Read(ref _quotaSaid) == 0 && Interlocked.Exchange(ref _quotaSaid, 1) == 0)
                {
                    SplicePipeQuotaReached(_logger);
                }
            }
            else if (Volatile.Read(ref _descriptorsSaid) == 0 && Interlocked.Exchange(ref _descriptorsSaid, 1) == 0)
            {
                var maxOpen = Transport.SplicePipe.MaxOpen;
                var (error, why) = errno switch
                {
                    Transport.LinuxSplice.EMFILE when maxOpen != long.MaxValue => ("EMFILE",
                        $"the pipes fill their share of the open-file limit (at most {maxOpen} pipes, a sixteenth of it at two "
                        + "descriptors each) or the process is out of descriptors; a higher open-file limit (ulimit -n, "
                        + "LimitNOFILE=) allows more"),
                    Transport.LinuxSplice.EMFILE => ("EMFILE",
                        "the process is out of descriptors; a higher open-file limit (ulimit -n, LimitNOFILE=) allows more"),
                    Transport.LinuxSplice.ENFILE => ("ENFILE",
                        "the system's open files (fs.file-max) or this user's hard pipe quota (fs.pipe-user-pages-hard) are used up"),
                    _ => ($"errno {errno}", "the kernel would not open a pipe"),
                };
                SplicePipesOutOfDescriptors(_logger, error, Transport.SplicePipe.OpenCount, why);
            }
        }
    }

    [LoggerMessage(LogEvents.SplicePipeQuotaReached, LogLevel.Warning,
        "No splice pipe to be had: the kernel gives new pipes less than 64 KiB, because this user's pipes fill its quota "
        + "(fs.pipe-user-pages-soft) or, rarely, fs.pipe-max-size is set below that. Bursts are copied through user space "
        + "until pipes come free, counted in passage_relay_splice_fallbacks_total{{reason=\"no_pipe\"}}; raise "
        + "fs.pipe-user-pages-soft for many bulk transfers at once. Not logged again",
        EventName = "SplicePipeQuotaReached")]
    private static partial void SplicePipeQuotaReached(ILogger logger);

    [LoggerMessage(LogEvents.SplicePipesOutOfDescriptors, LogLevel.Warning,
        "No splice pipe to be had ({Error}, {Open} pipes open): {Why}. Bursts are copied through user space until pipes "
        + "come free, counted in passage_relay_splice_fallbacks_total{{reason=\"no_pipe\"}}. Not logged again",
        EventName = "SplicePipesOutOfDescriptors")]
    private static partial void SplicePipesOutOfDescriptors(ILogger logger, string error, long open, string why);

    [LoggerMessage(LogEvents.Splicing, LogLevel.Information,
        "Splicing plain sockets through pipes of up to {PipeKiB} KiB while those larger than 64 KiB take under {BudgetMiB:0.#} MiB "
        + "(a quarter of fs.pipe-user-pages-soft: raise it for many bulk transfers at once), 64 KiB ones past that; {Cap}",
        EventName = "Splicing")]
    private static partial void Splicing(ILogger logger, int pipeKiB, double budgetMiB, string cap);

    [LoggerMessage(LogEvents.SplicingDefaultPipes, LogLevel.Information,
        "Splicing plain sockets through 64 KiB pipes (fs.pipe-user-pages-soft could not be read); {Cap}",
        EventName = "SplicingDefaultPipes")]
    private static partial void SplicingDefaultPipes(ILogger logger, string cap);

    [LoggerMessage(LogEvents.HostAddressesUnread, LogLevel.Warning,
        "This host's network interfaces could not be read (out of descriptors, or netlink sockets not allowed?): until they can be, read again at each "
        + "dial, every destination address is taken for one of the relay's own host, refused unless private ones are allowed",
        EventName = "HostAddressesUnread")]
    private static partial void HostAddressesUnread(ILogger logger);

    [LoggerMessage(LogEvents.OwnResolver, LogLevel.Information,
        "Destination names: /etc/hosts, then DNS servers {Servers} (from {Source}), search {Search}, {TimeoutSeconds} s x {Attempts} attempts; answers kept within their TTLs",
        EventName = "OwnResolver")]
    private static partial void OwnResolver(ILogger logger, string servers, string source, string search, double timeoutSeconds, int attempts);

    [LoggerMessage(LogEvents.SystemResolver, LogLevel.Information,
        "Destination names: the system resolver (getaddrinfo, as nsswitch.conf says or relay.dnsResolver asks); answers kept up to relay.dnsCacheTtl",
        EventName = "SystemResolver")]
    private static partial void SystemResolver(ILogger logger);
}
