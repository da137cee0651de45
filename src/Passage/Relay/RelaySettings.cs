using System.Net;
using System.Text.Json;
using Passage.Configuration;
using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;
using Passage.Telemetry;

namespace Passage.Relay;

/// <summary>
/// The <c>relay</c> and <c>log</c> sections of a configuration: reading them into validated options
/// (every error at once, each naming its key) and writing the effective configuration back as JSON.
/// </summary>
public static class RelaySettings
{
    /// <summary>Every key this reader understands; <c>:*</c> marks free-form children.</summary>
    public static readonly IReadOnlyList<string> KnownKeys =
    [
        "relay:passthrough:*", "relay:routes:*", "relay:upstream", "relay:map:*", "relay:admin",
        "relay:connect:*", "relay:connectPlain:*", "relay:insecurePlain", "relay:key", "relay:names:*", "relay:allow:*", "relay:deny:*",
        "relay:requireTls", "relay:tokenFile", "relay:clientIds:*", "relay:minHttpVersion", "relay:requestHeadTimeout",
        "relay:maxRequestHeadBytes", "relay:maxTunnels", "relay:maxTunnelsPerClient", "relay:maxStreamsPerConnection",
        "relay:streamWindow", "relay:connectionWindow",
        "relay:allowPrivate", "relay:allowNetworks:*", "relay:dnsCacheTtl", "relay:dnsNegativeTtl", "relay:dnsCacheSize",
        "relay:dnsResolver", "relay:dnsServers:*",
        "relay:zeroCopy", "relay:maxConnections", "relay:maxConnectionsPerClient", "relay:connectTimeout", "relay:idleTimeout", "relay:handshakeTimeout", "relay:drainTimeout",
        "log:level", "log:format",
    ];

    /// <summary>Reads the relay options; check <see cref="SettingsReader.Errors"/> before using them.</summary>
    public static RelayOptions Read(SettingsReader reader)
    {
        reader.CheckUnknownKeys(KnownKeys);
        var limits = new RelayLimits
        {
            MaxConnections = reader.GetInt("relay:maxConnections", RelayLimits.DefaultMaxConnections, 1, 1_000_000),
            MaxConnectionsPerClient = reader.GetInt("relay:maxConnectionsPerClient", RelayLimits.DefaultMaxConnectionsPerClient, 1, 1_000_000),
            ConnectTimeout = reader.GetDuration("relay:connectTimeout", new RelayLimits().ConnectTimeout),
            IdleTimeout = reader.GetDuration("relay:idleTimeout", new RelayLimits().IdleTimeout, allowInfinite: true),
            DrainTimeout = reader.GetDuration("relay:drainTimeout", new RelayLimits().DrainTimeout),
            HandshakeTimeout = reader.GetDuration("relay:handshakeTimeout", new RelayLimits().HandshakeTimeout),
            ZeroCopy = reader.GetBool("relay:zeroCopy", true),
        };
        var passthrough = PassthroughSettings.Read(reader);
        var (connect, connectConfigured) = ConnectSettings.Read(reader);
        if (!connectConfigured && passthrough is not null)
        {
            CheckGuardsWithoutConnect(reader, connect);
            connect = null;
        }
        else if (!connectConfigured)
        {
            // `passage relay` alone: a CONNECT relay on loopback, public destinations on port 443.
            connect = connect with { Endpoints = [ConnectSettings.DefaultEndpoint] };
        }
        if (connect is not null)
        {
            CheckEmptyFileNames(reader);
            CheckFiles(reader, connect);
            CheckNames(reader);
        }
        var admin = reader.GetListenEndpoint("relay:admin");
        CheckListenersApart(reader, passthrough, connect, admin);
        return new RelayOptions
        {
            Passthrough = passthrough,
            Connect = connect,
            AdminEndpoint = admin,
            Destinations = ReadDestinations(reader),
            Limits = limits,
        };
    }

    private static DestinationOptions ReadDestinations(SettingsReader reader)
    {
        var (networkTexts, networksLayer) = reader.GetValues("relay:allowNetworks");
        var networkErrors = new List<string>();
        var networks = AddressPolicy.ParseNetworks(networkTexts, SettingsReader.Display("relay:allowNetworks"), networkErrors);
        foreach (var error in networkErrors)
        {
            reader.AddMessage(error, networksLayer);
        }

        var map = new Dictionary<string, IPAddress[]>(StringComparer.OrdinalIgnoreCase);
        var mapKeys = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, name, value, layer) in reader.GetMap("relay:map"))
        {
            var host = name.TrimEnd('.').ToLowerInvariant();
            if (HostSyntax.Parse(host, out _) != HostKind.Name)
            {
                reader.AddError(key, $"'{name}' is not a host name", layer);
                continue;
            }
            if (mapKeys.TryGetValue(host, out var first))
            {
                // Names are read ignoring case and a trailing dot: one of the two was dropped without a word.
                reader.AddError(key, $"the same name as {SettingsReader.Display(first)} (read ignoring case and a trailing dot); give it once", layer);
                continue;
            }
            mapKeys[host] = key;
            var addresses = new List<IPAddress>();
            var parts = value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var part in parts)
            {
                if (IPAddress.TryParse(part.Trim('[', ']'), out var address))
                {
                    addresses.Add(address);
                }
                else
                {
                    reader.AddError(key, $"'{part}' is not an IP address", layer);
                }
            }
            if (parts.Length == 0)
            {
                reader.AddError(key, "expected one or more IP addresses, comma-separated", layer);
            }
            map[host] = addresses.ToArray();
        }

        var dnsDefaults = new DnsCacheOptions();
        return new DestinationOptions
        {
            AllowPrivate = reader.GetBool("relay:allowPrivate", false),
            AllowNetworks = networks,
            Map = map,
            Dns = ReadResolver(reader, out bool autoResolver),
            DnsResolverAuto = autoResolver,
            DnsCache = new DnsCacheOptions
            {
                MaxAge = reader.GetDuration("relay:dnsCacheTtl", dnsDefaults.MaxAge, allowZero: true),
                NegativeMaxAge = reader.GetDuration("relay:dnsNegativeTtl", dnsDefaults.NegativeMaxAge, atLeast: DnsCacheOptions.MinNegativeMaxAge),
                MaxEntries = reader.GetInt("relay:dnsCacheSize", DnsCacheOptions.DefaultMaxEntries, 1, 1_000_000),
            },
        };
    }

    /// <summary>
    /// The CONNECT relay's key and token files, read now so that a bad one is an error naming its key rather than a
    /// failure at start: anything at the key's path must be a regular file holding an identity (it is created when
    /// missing), and the token file must read as one (a FIFO or a device is refused before it is opened, so checking
    /// never waits).
    /// </summary>
    private static void CheckFiles(SettingsReader reader, ConnectOptions connect)
    {
        if (Identity.NodeIdentity.FileProblem(connect.KeyFile) is { } problem)
        {
            reader.AddErrorWhereSet("relay:key", problem);
        }
        // The certificate is written beside the key: a FIFO there would hold the start as one at the key's path does.
        var certificate = Connect.ConnectRelay.CertificatePathFor(connect.KeyFile);
        if (InputFile.Refusal(certificate, InputFile.Stat(certificate)) is { } certificateRefusal)
        {
            reader.AddErrorWhereSet("relay:key", $"its certificate: {certificateRefusal}");
        }

        // One missing or not a regular file has its error already (ConnectSettings).
        if (connect.TokenFile is { } tokenFile && InputFile.Stat(tokenFile) is { Kind: FileKind.Regular or FileKind.Unknown })
        {
            if (Auth.TokenFile.TryOpen(tokenFile, out var tokens, out var error, timeProvider: null, checkInterval: null, watch: false))
            {
                tokens.Dispose();
            }
            else
            {
                reader.AddErrorWhereSet("relay:tokenFile", error);
            }
        }
    }

    /// <summary>
    /// A key or token file set to an empty name (an unset shell variable: <c>--token-file "$TOKENS"</c>) is an error, not
    /// the setting left out: without its token file the relay would serve anyone, and without its key it would make a
    /// new identity in the default place, one its clients do not pin. JSON's null still leaves a setting out.
    /// </summary>
    private static void CheckEmptyFileNames(SettingsReader reader)
    {
        (string Key, string Otherwise)[] files =
        [
            ("relay:tokenFile", "a relay that asks no credentials"),
            ("relay:key", $"the default, {new ConnectOptions().KeyFile}"),
        ];
        foreach (var (key, otherwise) in files)
        {
            if (reader.GetString(key) is { Length: 0 })
            {
                reader.AddErrorWhereSet(key, $"the file name is empty (leave the setting out for {otherwise})");
            }
        }
    }

    /// <summary>
    /// With no CONNECT door (routes or an upstream alone start pass-through only), the settings that guard CONNECT would
    /// guard nothing: pass-through reads no credentials and goes where its routes say. One of them set is taken for a
    /// relay its operator believes guarded, so it is an error rather than ignored.
    /// </summary>
    private static void CheckGuardsWithoutConnect(SettingsReader reader, ConnectOptions read)
    {
        (string Key, bool Set)[] guards =
        [
            ("relay:tokenFile", read.TokenFile is not null),
            ("relay:clientIds", read.ClientIds.Count > 0),
            ("relay:allow", read.Allow.Count > 0),
            ("relay:deny", read.Deny.Count > 0),
            ("relay:requireTls", read.RequireTls),
        ];
        foreach (var (key, set) in guards)
        {
            if (set)
            {
                reader.AddErrorWhereSet(key, GuardsNothing);
            }
        }
    }

    private const string GuardsNothing =
        "guards the CONNECT doors, and there is none: routes or an upstream alone start pass-through only, which reads no "
        + "credentials and goes where its routes say (add relay.connect or relay.connectPlain for a CONNECT door, or leave this out)";

    /// <summary>
    /// The names a new certificate is to carry: each must be one a certificate can name, or the start would fail making
    /// the key (and does so whether or not the key exists, so that a setting is good or bad whatever is on disk).
    /// </summary>
    private static void CheckNames(SettingsReader reader)
    {
        foreach (var (key, name, layer) in reader.GetList("relay:names"))
        {
            if (Identity.NodeIdentity.CertificateNameProblem(name) is { } problem)
            {
                reader.AddError(key, problem, layer);
            }
        }
    }

    /// <summary>
    /// Which resolver looks destination names up: <c>relay:dnsResolver</c> <c>builtin</c> (the relay's own, with
    /// resolv.conf's settings and <c>relay:dnsServers</c> in place of its servers when given), <c>system</c>
    /// (getaddrinfo), or <c>auto</c> (the default: builtin where nsswitch.conf says hosts are files then DNS,
    /// as getaddrinfo would answer the same there; else system). Servers given choose builtin under auto.
    /// </summary>
    internal static ResolverConf? ReadResolver(SettingsReader reader, string resolvConfPath = ResolverConf.DefaultPath, string nsswitchPath = "/etc/nsswitch.conf") =>
        ReadResolver(reader, out _, resolvConfPath, nsswitchPath);

    /// <summary>As <see cref="ReadResolver(SettingsReader, string, string)"/>; <paramref name="auto"/> says whether the choice was left to nsswitch.conf.</summary>
    private static ResolverConf? ReadResolver(SettingsReader reader, out bool auto, string resolvConfPath = ResolverConf.DefaultPath, string nsswitchPath = "/etc/nsswitch.conf")
    {
        string mode = reader.GetChoice("relay:dnsResolver", "auto", "auto", "builtin", "system");
        auto = mode == "auto";
        var servers = new List<IPEndPoint>();
        foreach (var (key, value, layer) in reader.GetList("relay:dnsServers"))
        {
            if (ParseDnsServer(value) is { } server)
            {
                servers.Add(server);
            }
            else
            {
                reader.AddError(key, $"'{value}' is not a DNS server: an IP address, with :PORT if not 53 ([IPv6]:PORT)", layer);
            }
        }

        if (servers.Count > 0 && mode == "system")
        {
            reader.AddError("relay:dnsServers", "the system resolver asks the servers of resolv.conf; set relay.dnsResolver to builtin or auto to use these", null);
            return null;
        }

        bool builtin = mode switch
        {
            "builtin" => true,
            "system" => false,
            _ => servers.Count > 0 || ResolverConf.NameServiceIsFilesThenDns(SystemFile.ReadIfPresent(nsswitchPath)),
        };
        if (!builtin)
        {
            return null;
        }

        ResolverConf conf = ResolverConf.Load(resolvConfPath);
        return servers.Count > 0 ? conf with { Servers = servers, GivenServers = servers } : conf;
    }

    /// <summary>
    /// A DNS server as written in settings: an address (port 53), <c>IPv4:PORT</c> or <c>[IPv6]:PORT</c>; a port,
    /// when written, from 1 to 65535. Null when it is none of these.
    /// </summary>
    internal static IPEndPoint? ParseDnsServer(string text)
    {
        // Only the dotted quad for IPv4: the resolver's short forms would read "53" as 0.0.0.53.
        string hostPart = text.Contains(']') || text.AsSpan().Count(':') > 1 ? "" : text.Split(':')[0];
        if (hostPart.Length > 0 && hostPart.AsSpan().Count('.') != 3)
        {
            return null;
        }

        if (IPAddress.TryParse(text, out IPAddress? address) && !text.StartsWith('['))
        {
            return new IPEndPoint(address, 53); // "10.0.0.1", "2001:db8::1:0": no port written
        }

        int colon = text.LastIndexOf(':');
        bool bracketed = text.StartsWith('[');
        if (colon <= 0 || (bracketed && text[colon - 1] != ']') || (!bracketed && text.IndexOf(':') != colon)
            || !int.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535)
        {
            return bracketed && text.EndsWith(']') && IPAddress.TryParse(text[1..^1], out IPAddress? bare) ? new IPEndPoint(bare, 53) : null;
        }

        string host = bracketed ? text[1..(colon - 1)] : text[..colon];
        return IPAddress.TryParse(host, out IPAddress? hostAddress) && (bracketed == (hostAddress.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6))
            ? new IPEndPoint(hostAddress, port)
            : null;
    }

    /// <summary>
    /// The front doors' listeners, for <see cref="SettingsReader.CheckListenersApart"/>: two on one address and port (a
    /// pass-through and a CONNECT listener, or a TLS and a plain one) cannot both be bound, and the admin listener not beside
    /// one: said by <c>config check</c> rather than by a failed start.
    /// </summary>
    private static void CheckListenersApart(SettingsReader reader, PassthroughOptions? passthrough, ConnectOptions? connect, IPEndPoint? admin) =>
        reader.CheckListenersApart(
            ("relay:passthrough", passthrough?.Endpoints ?? []),
            ("relay:connect", connect?.Endpoints ?? []),
            ("relay:connectPlain", connect?.PlainEndpoints ?? []),
            ("relay:admin", admin is null ? [] : [admin]));

    /// <summary>
    /// Reads a list of listen endpoints, reporting each bad one; with the layer they came from (null when unset), for
    /// the errors found in them later.
    /// </summary>
    internal static (List<IPEndPoint> Endpoints, SettingsLayer? Layer) ReadEndpoints(SettingsReader reader, string key)
    {
        var endpoints = new List<IPEndPoint>();
        var list = reader.GetList(key);
        foreach (var (entryKey, value, layer) in list)
        {
            if (ListenEndpoint.TryParse(value, out var endpoint, out var error))
            {
                endpoints.Add(endpoint);
            }
            else
            {
                reader.AddError(entryKey, $"'{value}': {error}", layer);
            }
        }
        return (endpoints, list.Count > 0 ? list[0].Layer : null);
    }

    /// <summary>Writes the effective configuration in the file's own schema, defaults included.</summary>
    public static string ToJson(RelayOptions relay, LogOptions log) => SettingsJson.Write(json =>
    {
        json.WriteStartObject("relay");
        if (relay.Passthrough is { } p)
        {
            SettingsJson.WriteArray(json, "passthrough", p.Endpoints.Select(FormatEndpoint));
            json.WriteStartObject("routes");
            foreach (var route in p.Routes)
            {
                json.WriteString(route.Pattern, route.UpstreamText);
            }
            json.WriteEndObject();
            if (p.Upstream is { } upstream)
            {
                json.WriteString("upstream", upstream.ToString());
            }
        }
        if (relay.Connect is { } c)
        {
            SettingsJson.WriteArray(json, "connect", c.Endpoints.Select(FormatEndpoint));
            SettingsJson.WriteArray(json, "connectPlain", c.PlainEndpoints.Select(FormatEndpoint));
            // Not kept in the options: what the endpoints above need, so the output reads back without errors.
            json.WriteBoolean("insecurePlain", c.PlainEndpoints.Any(e => !IPAddress.IsLoopback(e.Address)));
            json.WriteString("key", c.KeyFile);
            SettingsJson.WriteArray(json, "names", c.Names);
            SettingsJson.WriteArray(json, "allow", c.Allow);
            SettingsJson.WriteArray(json, "deny", c.Deny);
            json.WriteBoolean("requireTls", c.RequireTls);
            if (c.TokenFile is not null)
            {
                json.WriteString("tokenFile", c.TokenFile);
            }
            SettingsJson.WriteArray(json, "clientIds", c.ClientIds);
            json.WriteString("minHttpVersion", c.MinHttpVersion >= 2 ? "2" : "1.1");
            json.WriteString("requestHeadTimeout", Duration.Format(c.RequestHeadTimeout));
            json.WriteNumber("maxRequestHeadBytes", c.MaxRequestHeadBytes);
            json.WriteNumber("maxTunnels", c.MaxTunnels);
            json.WriteNumber("maxTunnelsPerClient", c.MaxTunnelsPerClient);
            json.WriteNumber("maxStreamsPerConnection", c.MaxStreamsPerConnection);
            json.WriteNumber("streamWindow", c.StreamWindowBytes);
            json.WriteNumber("connectionWindow", c.ConnectionWindowBytes);
        }
        if (relay.AdminEndpoint is { } admin)
        {
            json.WriteString("admin", FormatEndpoint(admin));
        }
        json.WriteStartObject("map");
        foreach (var (host, addresses) in relay.Destinations.Map.OrderBy(m => m.Key, StringComparer.Ordinal))
        {
            json.WriteString(host, string.Join(",", addresses.Select(a => a.ToString())));
        }
        json.WriteEndObject();
        json.WriteBoolean("allowPrivate", relay.Destinations.AllowPrivate);
        SettingsJson.WriteArray(json, "allowNetworks", relay.Destinations.AllowNetworks.Select(n => n.ToString()));
        json.WriteString("dnsCacheTtl", Duration.Format(relay.Destinations.DnsCache.MaxAge));
        json.WriteString("dnsNegativeTtl", Duration.Format(relay.Destinations.DnsCache.NegativeMaxAge));
        json.WriteNumber("dnsCacheSize", relay.Destinations.DnsCache.MaxEntries);
        // Auto as configured, not the resolver it chose here: read back, that would pin the choice nsswitch.conf makes
        // at each start (on this host, or on the one the printed settings are taken to).
        json.WriteString("dnsResolver", relay.Destinations.DnsResolverAuto ? "auto" : relay.Destinations.Dns is null ? "system" : "builtin");
        // The servers given, not resolv.conf's: read back, those would pin servers the relay otherwise follows as
        // resolv.conf changes (the relay says which it asks as it starts).
        SettingsJson.WriteArray(json, "dnsServers", relay.Destinations.Dns?.GivenServers?.Select(s => s.ToString()) ?? []);
        json.WriteBoolean("zeroCopy", relay.Limits.ZeroCopy);
        json.WriteNumber("maxConnections", relay.Limits.MaxConnections);
        json.WriteNumber("maxConnectionsPerClient", relay.Limits.MaxConnectionsPerClient);
        json.WriteString("connectTimeout", Duration.Format(relay.Limits.ConnectTimeout));
        json.WriteString("idleTimeout", Duration.Format(relay.Limits.IdleTimeout));
        json.WriteString("handshakeTimeout", Duration.Format(relay.Limits.HandshakeTimeout));
        json.WriteString("drainTimeout", Duration.Format(relay.Limits.DrainTimeout));
        json.WriteEndObject();
        log.WriteJson(json);
    });

    /// <summary>An endpoint as the settings write it: <c>127.0.0.1:9443</c>, <c>[::]:443</c>.</summary>
    public static string FormatEndpoint(IPEndPoint endpoint) => endpoint.ToString();
}
