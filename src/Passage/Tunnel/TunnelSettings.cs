using System.Globalization;
using System.Net;
using System.Net.Quic;
using Passage.Configuration;
using Passage.Identity;

namespace Passage.Tunnel;

/// <summary>
/// Reads the tunnel's sections (<c>general</c>, <c>tls</c>, <c>transport</c>, <c>system</c>) into
/// <see cref="TunnelOptions"/>, collecting every error, each naming its key.
/// </summary>
public static partial class TunnelSettings
{
    /// <summary>Every key the tunnel understands (the <c>log</c> section included).</summary>
    public static readonly IReadOnlyList<string> KnownKeys =
    [
        "general:mode", "general:peer", "general:peerHostname", "general:bindAddress", "general:connectAddress",
        "general:httpBindAddress", "general:httpConnectAddress", "general:adminBindAddress",
        "tls:key", "tls:cert", "tls:ca",
        "transport:protocol", "transport:maxIdleTimeout", "transport:keepAliveInterval", "transport:maxConcurrentHttpStreams",
        "transport:streamReceiveWindow", "transport:receiveWindow", "transport:socketReceiveBufferSize", "transport:socketSendBufferSize",
        "transport:congestionAlgorithm", "transport:compress",
        "system:connectInterval", "system:tcpNoDelay", "system:waitForFirstAttempt", "system:watchdogFactor", "system:addForwarded",
        "system:drainTimeout", "system:backendTimeout", "system:idleTimeout",
        "log:level", "log:format",
    ];

    /// <summary>Reads and validates; check <see cref="SettingsReader.Errors"/> before using the result.</summary>
    /// <param name="reader">The settings layers.</param>
    /// <param name="quicSupported">Whether this runtime can speak QUIC (normally <see cref="IsQuicSupported"/>).</param>
    public static TunnelOptions Read(SettingsReader reader, bool quicSupported)
    {
        ArgumentNullException.ThrowIfNull(reader);
        reader.CheckUnknownKeys(KnownKeys);
        var defaults = new TunnelOptions();

        TunnelMode? mode = null;
        if (reader.GetString("general:mode") is null)
        {
            reader.AddError("general:mode", "required: client or server");
        }
        else
        {
            mode = reader.GetChoice("general:mode", "client", "client", "server") == "server" ? TunnelMode.Server : TunnelMode.Client;
        }

        NodeId? peer = null;
        if (reader.GetString("general:peer") is { Length: > 0 } peerText)
        {
            if (!NodeId.TryParse(peerText.Trim(), out peer))
            {
                reader.AddErrorWhereSet("general:peer", $"'{peerText}' is not a node ID: expected {NodeId.TextLength} characters of base32 (a-z, 2-7); `passage id FILE` prints one");
            }
        }
        var peerHostname = reader.GetString("general:peerHostname") is { Length: > 0 } h ? h.Trim().TrimEnd('.').ToLowerInvariant() : null;
        var ca = ExistingFile(reader, "tls:ca");
        var cert = ExistingFile(reader, "tls:cert");
        var key = reader.GetString("tls:key") is { Length: > 0 } k ? k : null;
        if (key is null)
        {
            reader.AddError("tls:key", "required: this end's identity file (created on first start), or the key of tls.cert");
        }
        else
        {
            // A FIFO would hold the start as one at tls.cert would (an identity file is refused when it is read; saying so
            // here makes --check say it too).
            var keyStatus = InputFile.Stat(key);
            if (InputFile.Refusal(key, keyStatus) is { } keyRefusal)
            {
                reader.AddErrorWhereSet("tls:key", keyRefusal);
            }
            else if (cert is not null && !keyStatus.Exists)
            {
                reader.AddErrorWhereSet("tls:key", $"'{key}': no such file (with tls.cert, tls.key is that certificate's key)");
            }
        }
        var peerSet = reader.GetString("general:peer") is { Length: > 0 };
        if (peerSet && (ca is not null || peerHostname is not null))
        {
            reader.AddError("general:peer", "set either general.peer or tls.ca with general.peerHostname, not both");
        }
        else if (!peerSet && ca is null && reader.GetString("tls:ca") is null)
        {
            reader.AddError("general:peer", "required: the other end's node ID (or tls.ca with general.peerHostname)");
        }
        else if (!peerSet && peerHostname is null)
        {
            reader.AddError("general:peerHostname", "required with tls.ca: the name the other end's certificate must carry");
        }

        var bindAddress = reader.GetListenEndpoint("general:bindAddress") ?? defaults.BindAddress;
        var httpBindAddress = reader.GetListenEndpoint("general:httpBindAddress") ?? defaults.HttpBindAddress;
        var connectAddress = Target(reader, "general:connectAddress", defaults.ConnectAddress);
        var httpConnectAddress = Target(reader, "general:httpConnectAddress", defaults.HttpConnectAddress);
        if (mode == TunnelMode.Client && connectAddress is null && reader.GetString("general:connectAddress") is null)
        {
            reader.AddError("general:connectAddress", "required in client mode: where the server end listens, host:port");
        }
        if (mode == TunnelMode.Server && httpConnectAddress is null && reader.GetString("general:httpConnectAddress") is null)
        {
            reader.AddError("general:httpConnectAddress", "required in server mode: the backend to send requests to, host:port");
        }

        var protocolText = reader.GetChoice("transport:protocol", "auto", "auto", "h2", "h3");
        var protocol = TunnelProtocol.Http2;
        if (protocolText == "h3")
        {
            if (quicSupported)
            {
                protocol = TunnelProtocol.Http3;
            }
            else
            {
                reader.AddErrorWhereSet("transport:protocol", "h3 needs QUIC, and this system has none (the runtime reports QuicConnection.IsSupported = false: no libmsquic); use h2 or auto");
            }
        }

        var congestion = reader.GetString("transport:congestionAlgorithm") is { Length: > 0 } c ? c.Trim() : null;
        if (congestion is not null && TcpTuning.CheckCongestionAlgorithm(congestion) is { } congestionError)
        {
            reader.AddErrorWhereSet("transport:congestionAlgorithm", congestionError);
        }

        var options = new TunnelOptions
        {
            Mode = mode ?? TunnelMode.Client,
            Peer = peer,
            PeerHostname = peerHostname,
            BindAddress = bindAddress,
            ConnectAddress = connectAddress,
            HttpBindAddress = httpBindAddress,
            HttpConnectAddress = httpConnectAddress,
            AdminBindAddress = reader.GetListenEndpoint("general:adminBindAddress"),
            KeyFile = key ?? "",
            CertFile = cert,
            CaFile = ca,
            Protocol = protocol,
            // HTTP/2 keep-alive pings (Kestrel's and the HTTP client's) take no delay or timeout under a second.
            MaxIdleTimeout = reader.GetDuration("transport:maxIdleTimeout", defaults.MaxIdleTimeout, atLeast: MinPingTime, bareMilliseconds: true),
            KeepAliveInterval = reader.GetDuration("transport:keepAliveInterval", defaults.KeepAliveInterval, atLeast: MinPingTime, bareMilliseconds: true),
            MaxConcurrentHttpStreams = reader.GetInt("transport:maxConcurrentHttpStreams", defaults.MaxConcurrentHttpStreams, 1, 100_000),
            StreamReceiveWindow = reader.GetInt("transport:streamReceiveWindow", defaults.StreamReceiveWindow, 65_535, int.MaxValue),
            ReceiveWindow = reader.GetInt("transport:receiveWindow", defaults.ReceiveWindow, 65_535, int.MaxValue),
            SocketReceiveBufferSize = OptionalInt(reader, "transport:socketReceiveBufferSize", 1024, 1 << 30),
            SocketSendBufferSize = OptionalInt(reader, "transport:socketSendBufferSize", 1024, 1 << 30),
            CongestionAlgorithm = congestion,
            Compress = reader.GetBool("transport:compress", defaults.Compress),
            ConnectInterval = reader.GetDuration("system:connectInterval", defaults.ConnectInterval, bareMilliseconds: true),
            TcpNoDelay = reader.GetBool("system:tcpNoDelay", defaults.TcpNoDelay),
            WaitForFirstAttempt = reader.GetBool("system:waitForFirstAttempt", defaults.WaitForFirstAttempt),
            WatchdogFactor = Factor(reader, "system:watchdogFactor", defaults.WatchdogFactor),
            AddForwarded = reader.GetBool("system:addForwarded", defaults.AddForwarded),
            DrainTimeout = reader.GetDuration("system:drainTimeout", defaults.DrainTimeout, bareMilliseconds: true),
            BackendTimeout = reader.GetDuration("system:backendTimeout", defaults.BackendTimeout, allowZero: true, bareMilliseconds: true),
            IdleTimeout = reader.GetDuration("system:idleTimeout", defaults.IdleTimeout, allowInfinite: true, bareMilliseconds: true),
        };
        // The admin listener on this end's own (the server's tunnel, the client's HTTP): config check passed it, and the start
        // failed, the address in use.
        reader.CheckListenersApart(
            options.Mode == TunnelMode.Server ? ("general:bindAddress", [options.BindAddress]) : ("general:httpBindAddress", [options.HttpBindAddress]),
            ("general:adminBindAddress", options.AdminBindAddress is { } admin ? [admin] : []));
        return options;
    }

    /// <summary>The shortest keep-alive interval and idle timeout: HTTP/2 pings are timed in whole seconds or more.</summary>
    private static readonly TimeSpan MinPingTime = TimeSpan.FromSeconds(1);

    /// <summary>True where the runtime can speak QUIC (and so HTTP/3).</summary>
    public static bool IsQuicSupported =>
        (OperatingSystem.IsLinux() || OperatingSystem.IsWindows() || OperatingSystem.IsMacOS()) && QuicConnection.IsSupported;

    /// <summary>
    /// The path set at <paramref name="key"/>, which must name a regular file: one that is missing, or is a FIFO, a
    /// device or a directory (which would hold the start: opening a FIFO waits for a writer), is an error naming the key.
    /// </summary>
    private static string? ExistingFile(SettingsReader reader, string key)
    {
        if (reader.GetString(key) is not { Length: > 0 } path)
        {
            return null;
        }
        if (InputFile.Problem(path) is { } problem)
        {
            reader.AddErrorWhereSet(key, problem);
            return null;
        }
        return path;
    }

    private static HostPort? Target(SettingsReader reader, string key, HostPort? fallback)
    {
        if (reader.GetString(key) is not { Length: > 0 } text)
        {
            return fallback;
        }
        if (HostPort.TryParse(text, out var target, out var error))
        {
            return target;
        }
        reader.AddErrorWhereSet(key, $"'{text}': {error}");
        return fallback;
    }

    private static int? OptionalInt(SettingsReader reader, string key, int min, int max) =>
        reader.GetString(key) is null ? null : reader.GetInt(key, min, min, max);

    private static double Factor(SettingsReader reader, string key, double fallback)
    {
        if (reader.GetString(key) is not { } text)
        {
            return fallback;
        }
        if (double.TryParse(text, NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out var value) && value is > 0 and < 1)
        {
            return value;
        }
        reader.AddErrorWhereSet(key, $"'{text}' is not a number between 0 and 1 (exclusive), e.g. 0.5");
        return fallback;
    }
}
