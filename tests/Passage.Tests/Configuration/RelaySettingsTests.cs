using System.Net;
using System.Text.Json;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging;
using Passage.Configuration;
using Passage.Relay;
using Passage.Relay.Destinations;
using Passage.Telemetry;

namespace Passage.Tests.Configuration;

public sealed class RelaySettingsTests
{
    private static SettingsLayer Layer(string source, params (string Key, string Value)[] values) =>
        new(source, new ConfigurationBuilder().AddInMemoryCollection(values.Select(v => new KeyValuePair<string, string?>(v.Key, v.Value))).Build());

    private static SettingsLayer JsonLayer(string json) =>
        new("relay.json", new ConfigurationBuilder().AddJsonStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json))).Build());

    private static (RelayOptions Options, IReadOnlyList<string> Errors) Read(params SettingsLayer[] layers)
    {
        var reader = new SettingsReader(layers);
        var options = RelaySettings.Read(reader);
        LogOptions.Read(reader, journalAttached: false);
        return (options, reader.Errors);
    }

    [Fact]
    public void With_nothing_set_the_relay_is_a_connect_relay_on_loopback_to_public_hosts_on_443()
    {
        var (options, errors) = Read();
        Assert.Empty(errors);
        Assert.Null(options.Passthrough);
        var connect = options.Connect!;
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 8443)], connect.Endpoints);
        Assert.Empty(connect.PlainEndpoints);
        Assert.Empty(connect.Allow);
        Assert.Equal("passage-data/relay.pem", connect.KeyFile);
        Assert.False(options.Destinations.AllowPrivate);
        Assert.Equal(RelayLimits.DefaultMaxConnections, options.Limits.MaxConnections);
        Assert.Equal(512, options.Limits.MaxConnectionsPerClient);
    }

    [Fact]
    public void Routes_alone_start_a_pass_through_relay_on_its_loopback_default_and_no_connect_relay()
    {
        var (options, errors) = Read(Layer("flags", ("relay:routes:*", ":443")));
        Assert.Empty(errors);
        Assert.Null(options.Connect);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 9443)], options.Passthrough!.Endpoints);
    }

    [Fact]
    public void Plain_connect_off_loopback_needs_insecure_plain()
    {
        var (_, errors) = Read(Layer("flags", ("relay:connectPlain:0", "0.0.0.0:8080")));
        var error = Assert.Single(errors);
        Assert.Contains("not a loopback address", error);
        Assert.EndsWith("(from flags)", error); // where the address came from, as every other setting's error says it
        var (_, allowed) = Read(Layer("flags", ("relay:connectPlain:0", "0.0.0.0:8080"), ("relay:insecurePlain", "true")));
        Assert.Empty(allowed);
    }

    [Fact]
    public void Connect_settings_are_validated_with_the_rest()
    {
        var (_, errors) = Read(JsonLayer("""
            { "relay": { "connect": ["127.0.0.1:0"], "allow": ["example.org"], "deny": ["~(:443"], "clientIds": ["nope"],
                         "minHttpVersion": "3", "maxTunnels": 0, "tokenFile": "/nonexistent/tokens" } }
            """));
        Assert.Equal(6, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("relay.allow[0]: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.deny[0]: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.clientIds[0]: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.minHttpVersion: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.maxTunnels: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.tokenFile: ", StringComparison.Ordinal));
    }

    /// <summary>
    /// A token file that is there but is a directory is refused as what it is, once: it was told "no such file", which
    /// sent the operator looking for a file that exists.
    /// </summary>
    [Fact]
    public void A_token_file_that_is_a_directory_is_one_error_saying_so_and_a_missing_one_says_no_such_file()
    {
        using var directory = new Infrastructure.TemporaryDirectory();
        var (_, errors) = Read(Layer("flags", ("relay:tokenFile", directory.Path)));
        Assert.Equal($"relay.tokenFile: '{directory.Path}' is a directory, not a regular file (from flags)", Assert.Single(errors));

        // The same with a pass-through relay alone, which reads the connect section but starts no CONNECT relay (and says
        // that the token file would guard nothing there).
        var (_, passthroughErrors) = Read(Layer("flags", ("relay:routes:*", ":443"), ("relay:tokenFile", directory.Path)));
        Assert.Equal(2, passthroughErrors.Count);
        Assert.Contains($"relay.tokenFile: '{directory.Path}' is a directory, not a regular file (from flags)", passthroughErrors);
        Assert.Contains(passthroughErrors, e => e.StartsWith("relay.tokenFile: guards the CONNECT doors", StringComparison.Ordinal));

        var missing = Path.Combine(directory.Path, "tokens");
        var (_, missingErrors) = Read(Layer("flags", ("relay:tokenFile", missing)));
        Assert.Equal($"relay.tokenFile: '{missing}': no such file (from flags)", Assert.Single(missingErrors));
    }

    /// <summary>
    /// Routes alone start pass-through only, which reads no credentials and follows its routes: a token file, client IDs,
    /// destination rules or requireTls set beside them would guard nothing, and the operator who set them believes the
    /// relay guarded. Each is an error naming where it was set; with a CONNECT door beside the routes they are fine.
    /// </summary>
    [Fact]
    public void Connect_guards_without_a_connect_door_are_errors_each_naming_its_key()
    {
        var (_, errors) = Read(JsonLayer("""
            { "relay": { "routes": { "*": ":443" }, "tokenFile": "tokens", "clientIds": ["a"], "allow": ["*:443"], "deny": ["a.test:443"], "requireTls": true } }
            """));
        foreach (var key in new[] { "tokenFile", "clientIds", "allow", "deny", "requireTls" })
        {
            Assert.Contains(errors, e => e.StartsWith($"relay.{key}: guards the CONNECT doors, and there is none", StringComparison.Ordinal) && e.EndsWith("(from relay.json)", StringComparison.Ordinal));
        }

        var (options, none) = Read(JsonLayer("""
            { "relay": { "routes": { "*": ":443" }, "requireTls": false, "allow": [] } }
            """));
        Assert.Empty(none);
        Assert.Null(options.Connect);

        var (both, alsoNone) = Read(JsonLayer("""
            { "relay": { "routes": { "*": ":443" }, "connectPlain": ["127.0.0.1:0"], "allow": ["*:443"], "requireTls": true } }
            """));
        Assert.Empty(alsoNone);
        Assert.NotNull(both.Connect);
    }

    [Fact]
    public void A_json_file_with_comments_is_read_in_full()
    {
        var (options, errors) = Read(JsonLayer("""
            {
              // where clients come in
              "relay": {
                "passthrough": ["127.0.0.1:0", "[::1]:0"],
                "routes": { "origin.test": ":8443", "*.example.org": "backend.internal:443" },
                "map": { "origin.test": "127.0.0.1", "backend.internal": "10.1.2.3,10.1.2.4" },
                "allowPrivate": true,
                "allowNetworks": ["192.0.2.0/24"],
                "maxConnections": 10,
                "maxConnectionsPerClient": 3,
                "connectTimeout": "2s",
                "idleTimeout": "infinite",
                "handshakeTimeout": "750ms",
                "drainTimeout": "1m", /* trailing commas are fine too */
              },
              "log": { "level": "debug", "format": "json" }
            }
            """));
        Assert.Empty(errors);
        var p = options.Passthrough!;
        Assert.Equal(2, p.Endpoints.Count);
        Assert.Equal(2, p.Routes.Count);
        Assert.Equal([IPAddress.Parse("10.1.2.3"), IPAddress.Parse("10.1.2.4")], options.Destinations.Map["backend.internal"]);
        Assert.True(options.Destinations.AllowPrivate);
        Assert.Equal(IPNetwork.Parse("192.0.2.0/24"), Assert.Single(options.Destinations.AllowNetworks));
        Assert.Equal(10, options.Limits.MaxConnections);
        Assert.Equal(3, options.Limits.MaxConnectionsPerClient);
        Assert.Equal(Timeout.InfiniteTimeSpan, options.Limits.IdleTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(750), options.Limits.HandshakeTimeout);
        Assert.Equal(TimeSpan.FromMinutes(1), options.Limits.DrainTimeout);
    }

    [Fact]
    public void Every_error_is_reported_at_once_each_naming_its_key_and_source()
    {
        var (_, errors) = Read(JsonLayer("""
            {
              "relay": {
                "passthrough": ["127.0.0.1:99999"],
                "routes": { "origin.test": "nohostport" },
                "maxConnections": "lots",
                "idleTimeout": "5 minutes",
                "allowNetworks": ["10.0.0.1/8"],
                "allowPrivate": "yes",
                "colour": "blue"
              },
              "log": { "level": "loud" }
            }
            """));
        Assert.Equal(8, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("relay.passthrough[0]: ", StringComparison.Ordinal) && e.EndsWith("(from relay.json)", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.routes.origin.test: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.maxConnections: 'lots'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.idleTimeout: '5 minutes'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.allowNetworks[0]: ", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.allowPrivate: 'yes'", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.colour: unknown setting", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("log.level: 'loud'", StringComparison.Ordinal));
    }

    [Fact]
    public void The_dns_cache_defaults_to_30_seconds_5_seconds_for_failures_and_4096_names()
    {
        var (options, errors) = Read();
        Assert.Empty(errors);
        Assert.Equal(new DnsCacheOptions(), options.Destinations.DnsCache);
        Assert.Equal(TimeSpan.FromSeconds(30), options.Destinations.DnsCache.MaxAge);
        Assert.Equal(TimeSpan.FromSeconds(5), options.Destinations.DnsCache.NegativeMaxAge);
        Assert.Equal(4096, options.Destinations.DnsCache.MaxEntries);
    }

    [Fact]
    public void The_dns_cache_settings_are_read_and_zero_turns_caching_off()
    {
        var (options, errors) = Read(JsonLayer("""{ "relay": { "dnsCacheTtl": "2m", "dnsNegativeTtl": "1s", "dnsCacheSize": 100 } }"""));
        Assert.Empty(errors);
        Assert.Equal(new DnsCacheOptions { MaxAge = TimeSpan.FromMinutes(2), NegativeMaxAge = TimeSpan.FromSeconds(1), MaxEntries = 100 }, options.Destinations.DnsCache);

        var (off, offErrors) = Read(Layer("environment", ("relay:dnsCacheTtl", "0s")));
        Assert.Empty(offErrors);
        Assert.Equal(TimeSpan.Zero, off.Destinations.DnsCache.MaxAge);
    }

    /// <summary>
    /// RFC 9520: a failed lookup is kept 1 s at least, so a name whose servers fail is not asked again on every
    /// connection. A shorter <c>relay.dnsNegativeTtl</c> (zero, which kept none, among them) is an error naming the key.
    /// </summary>
    [Theory]
    [InlineData("0")]
    [InlineData("0s")]
    [InlineData("500ms")]
    [InlineData("999ms")]
    public void A_dns_negative_ttl_under_one_second_is_an_error_naming_the_key(string value)
    {
        var (_, errors) = Read(JsonLayer($$"""{ "relay": { "dnsNegativeTtl": "{{value}}" } }"""));
        var error = Assert.Single(errors);
        // The least first, and no example below it: "'500ms' is not a duration such as 500ms, ..., 1s or more" read as if
        // the value were malformed.
        Assert.StartsWith($"relay.dnsNegativeTtl: '{value}' is not a duration of 1s or more, such as 5s, 30s or 5m (at most 30d)", error);
        Assert.DoesNotContain("500ms,", error);
        Assert.EndsWith("(from relay.json)", error);
    }

    [Fact]
    public void Bad_dns_cache_settings_are_errors_naming_their_keys()
    {
        var (_, errors) = Read(JsonLayer("""{ "relay": { "dnsCacheTtl": "infinite", "dnsNegativeTtl": "-1s", "dnsCacheSize": 0, "dnsCacheTTL2": 1 } }"""));
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("relay.dnsCacheTtl: 'infinite' is not a duration", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsNegativeTtl: '-1s' is not a duration", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsCacheSize: '0' is not a whole number", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsCacheTTL2: unknown setting", StringComparison.Ordinal));
    }

    [Fact]
    public void Dns_servers_choose_the_relays_own_resolver_with_the_rest_of_resolv_conf()
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var resolvConf = Path.Combine(directory.Path, "resolv.conf");
        File.WriteAllText(resolvConf, "nameserver 10.0.0.53\nsearch lab.example\noptions timeout:2\n");
        var missing = Path.Combine(directory.Path, "nsswitch.conf");

        var reader = new SettingsReader([JsonLayer("""{ "relay": { "dnsServers": ["127.0.0.1:5353", "::1", "[::1]:54"] } }""")]);
        var conf = RelaySettings.ReadResolver(reader, resolvConf, missing);
        Assert.Empty(reader.Errors);
        Assert.Equal([IPEndPoint.Parse("127.0.0.1:5353"), IPEndPoint.Parse("[::1]:53"), IPEndPoint.Parse("[::1]:54")], conf!.Servers);
        Assert.Equal(["lab.example"], conf.Search);
        Assert.Equal(TimeSpan.FromSeconds(2), conf.Timeout);
    }

    [Theory]
    [InlineData("10.0.0.1", "10.0.0.1:53")]
    [InlineData("10.0.0.1:5353", "10.0.0.1:5353")]
    [InlineData("2001:db8::1:0", "[2001:db8::1:0]:53")]
    [InlineData("[2001:db8::1]", "[2001:db8::1]:53")]
    [InlineData("[2001:db8::1]:5353", "[2001:db8::1]:5353")]
    [InlineData("10.0.0.1:0", null)]
    [InlineData("10.0.0.1:65536", null)]
    [InlineData("[10.0.0.1]:53", null)]
    [InlineData("2001:db8::1]:53", null)]
    [InlineData("53", null)]
    [InlineData("10.1", null)]
    [InlineData("10.1:53", null)]
    [InlineData("dns.example", null)]
    [InlineData("dns.example:53", null)]
    [InlineData("", null)]
    public void A_dns_server_is_an_address_with_a_port_only_when_one_is_written(string text, string? expected) =>
        Assert.Equal(expected, RelaySettings.ParseDnsServer(text)?.ToString());

    [Theory]
    [InlineData("hosts: files dns\n", "auto", true)]
    [InlineData("hosts: files mdns4_minimal [NOTFOUND=return] dns\n", "auto", false)]
    [InlineData("hosts: files mdns4_minimal dns\n", "builtin", true)]
    [InlineData("hosts: files dns\n", "system", false)]
    public void Auto_takes_the_relays_own_resolver_only_where_the_system_asks_the_hosts_file_then_dns(string nsswitch, string mode, bool builtin)
    {
        using var directory = new Passage.Tests.Infrastructure.TemporaryDirectory();
        var resolvConf = Path.Combine(directory.Path, "resolv.conf");
        File.WriteAllText(resolvConf, "nameserver 10.0.0.53\n");
        var nsswitchConf = Path.Combine(directory.Path, "nsswitch.conf");
        File.WriteAllText(nsswitchConf, nsswitch);

        var reader = new SettingsReader([Layer("environment", ("relay:dnsResolver", mode))]);
        var conf = RelaySettings.ReadResolver(reader, resolvConf, nsswitchConf);
        Assert.Empty(reader.Errors);
        Assert.Equal(builtin, conf is not null);
        if (conf is not null)
        {
            Assert.Equal([IPEndPoint.Parse("10.0.0.53:53")], conf.Servers);
        }
    }

    [Fact]
    public void Bad_dns_resolver_settings_are_errors_naming_their_keys()
    {
        var (_, errors) = Read(JsonLayer("""{ "relay": { "dnsResolver": "bind", "dnsServers": ["10.0.0.1", "dns.example", "10.0.0.2:0", "10.0.0.3:99999"] } }"""));
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("relay.dnsResolver: 'bind' is not one of auto, builtin, system", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsServers[1]: 'dns.example' is not a DNS server", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsServers[2]: '10.0.0.2:0' is not a DNS server", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("relay.dnsServers[3]: '10.0.0.3:99999' is not a DNS server", StringComparison.Ordinal));

        var (_, conflict) = Read(JsonLayer("""{ "relay": { "dnsResolver": "system", "dnsServers": ["10.0.0.1"] } }"""));
        Assert.Equal("relay.dnsServers: the system resolver asks the servers of resolv.conf; set relay.dnsResolver to builtin or auto to use these", Assert.Single(conflict));
    }

    [Fact]
    public void Later_layers_win_and_a_list_set_later_replaces_the_whole_list()
    {
        var file = JsonLayer("""{ "relay": { "passthrough": ["127.0.0.1:1", "127.0.0.1:2"], "upstream": "a.test:443", "idleTimeout": "1m" } }""");
        var environment = Layer("environment", ("relay:idleTimeout", "2m"));
        var flags = Layer("flags", ("relay:passthrough:0", "127.0.0.1:3"));
        var (options, errors) = Read(file, environment, flags);
        Assert.Empty(errors);
        Assert.Equal([new IPEndPoint(IPAddress.Loopback, 3)], options.Passthrough!.Endpoints);
        Assert.Equal(TimeSpan.FromMinutes(2), options.Limits.IdleTimeout);
        Assert.Equal(new HostPort("a.test", 443), options.Passthrough.Upstream);
    }

    /// <summary>
    /// A list or an object where one value goes is said to be so, once, of the key: a text setting's used to come out as
    /// "relay.key.0: unknown setting" (one per entry), a number's as that and its own reader's error.
    /// </summary>
    [Fact]
    public void A_list_or_object_where_one_value_goes_is_one_error_naming_the_key()
    {
        var (_, errors) = Read(JsonLayer("""{ "relay": { "key": ["a.pem", "b.pem"], "maxTunnels": { "x": 1 }, "connect": ["127.0.0.1:0"] } }"""));
        Assert.Equal(
            ["relay.key: expected one value, not a list or an object (from relay.json)", "relay.maxTunnels: expected one value, not a list or an object (from relay.json)"],
            errors.Order());
    }

    /// <summary>
    /// An object where a list goes is one error naming the list (its values were taken for entries, ordered by name), and
    /// an entry that is an object is an error naming it (it was read as an empty entry); the entries after it are not
    /// numbered wrongly.
    /// </summary>
    [Fact]
    public void An_object_where_a_list_goes_and_an_entry_that_is_an_object_are_errors_naming_them()
    {
        var (_, errors) = Read(JsonLayer("""{ "relay": { "allow": { "a": "example.com:443" }, "deny": [{ "x": "y" }, "bad"], "connect": ["127.0.0.1:0"] } }"""));
        Assert.Equal(
            ["relay.allow: expected a list, not an object (from relay.json)", "relay.deny[0]: expected a text value, not an object or list (from relay.json)"],
            errors.Order());
    }

    /// <summary>A list entry set by its own variable (indexes may skip) is named by that variable, one split at commas by its.</summary>
    [Fact]
    public void A_list_entry_from_the_environment_names_the_variable_that_set_it()
    {
        var (_, indexed) = Read(Layer("environment", ("relay:deny:0", "a.example:443"), ("relay:deny:3", "bad")));
        Assert.Equal("relay.deny[1]: 'bad' has no port (use bad:443, bad:*) (from PASSAGE__RELAY__DENY__3)", Assert.Single(indexed));
        var (_, split) = Read(Layer("environment", ("relay:deny", "a.example:443,bad")));
        Assert.Equal("relay.deny[1]: 'bad' has no port (use bad:443, bad:*) (from PASSAGE__RELAY__DENY)", Assert.Single(split));
    }

    /// <summary>A section under a wrong name, or a key in no section, was one error per key in it: it is one error, naming it.</summary>
    [Fact]
    public void An_unknown_key_is_one_error_whatever_it_holds()
    {
        var (_, errors) = Read(JsonLayer("""
            { "logs": { "level": "debug", "format": "json" }, "relay": { "connectPlain": ["127.0.0.1:0"], "dns": { "servers": ["10.0.0.53"] } } }
            """));
        Assert.Equal(["logs: unknown setting (from relay.json)", "relay.dns: unknown setting (from relay.json)"], errors.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void An_environment_variable_with_a_typo_is_an_error_not_ignored()
    {
        var (_, errors) = Read(Layer("environment", ("relay:idleTimout", "1m")));
        Assert.Equal("PASSAGE__RELAY__IDLETIMOUT: unknown setting", Assert.Single(errors));
    }

    [Fact]
    public void Endpoints_without_routes_or_upstream_would_refuse_everything_and_are_an_error()
    {
        var (_, errors) = Read(Layer("flags", ("relay:passthrough:0", "127.0.0.1:0")));
        Assert.StartsWith("relay.routes: no route and no upstream", Assert.Single(errors));
    }

    [Fact]
    public void Upstream_and_routes_together_are_an_error()
    {
        var (_, errors) = Read(Layer("flags", ("relay:upstream", "a.test:443"), ("relay:routes:b.test", ":443")));
        Assert.StartsWith("relay.upstream: set either", Assert.Single(errors));
    }

    [Fact]
    public void Connect_settings_written_as_json_read_back_to_the_same_options()
    {
        var (options, errors) = Read(JsonLayer("""
            { "relay": { "connect": ["127.0.0.1:0"], "connectPlain": ["[::1]:0"], "key": "k.pem", "names": ["relay.test"],
                         "allow": ["*.example.org:443", "~api[0-9]+\\.test:8000-8999"], "deny": ["*:25"], "requireTls": true,
                         "minHttpVersion": "2", "maxTunnels": 7, "maxTunnelsPerClient": 3, "admin": "127.0.0.1:0" } }
            """));
        Assert.Empty(errors);
        var json = RelaySettings.ToJson(options, new Passage.Telemetry.LogOptions());
        var (again, againErrors) = Read(JsonLayer(json));
        Assert.Empty(againErrors);
        Assert.Equal(options.Connect! with { Endpoints = [], PlainEndpoints = [], Names = [], Allow = [], Deny = [], ClientIds = [] },
                     again.Connect! with { Endpoints = [], PlainEndpoints = [], Names = [], Allow = [], Deny = [], ClientIds = [] });
        Assert.Equal(options.Connect.Allow, again.Connect.Allow);
        Assert.Equal(options.Connect.Deny, again.Connect.Deny);
        Assert.Equal(options.Connect.PlainEndpoints, again.Connect.PlainEndpoints);
        Assert.Equal(options.AdminEndpoint, again.AdminEndpoint);
    }

    [Fact]
    public void A_plain_endpoint_off_loopback_written_as_json_reads_back_without_errors()
    {
        var (options, errors) = Read(JsonLayer("""
            { "relay": { "connectPlain": ["192.0.2.1:0"], "insecurePlain": true } }
            """));
        Assert.Empty(errors);
        var json = RelaySettings.ToJson(options, new Passage.Telemetry.LogOptions());
        var (again, againErrors) = Read(JsonLayer(json));
        Assert.Empty(againErrors);
        Assert.Equal(options.Connect!.PlainEndpoints, again.Connect!.PlainEndpoints);
    }

    [Fact]
    public void The_effective_configuration_written_as_json_reads_back_to_the_same_options()
    {
        var (options, errors) = Read(JsonLayer("""
            { "relay": { "passthrough": ["[::1]:9443"], "routes": { "*.example.org": ":443", "a.test": "b.test:8443" },
                         "map": { "a.test": "127.0.0.1" }, "allowPrivate": true, "allowNetworks": ["fd00::/8"], "idleTimeout": "90s",
                         "dnsCacheTtl": "1500ms", "dnsNegativeTtl": "1200ms", "dnsCacheSize": 10 } }
            """));
        Assert.Empty(errors);
        var json = RelaySettings.ToJson(options, new Passage.Telemetry.LogOptions { Level = LogLevel.Warning, Format = "json" });
        using (JsonDocument.Parse(json))
        {
        }

        var (again, againErrors) = Read(JsonLayer(json));
        Assert.Empty(againErrors);
        Assert.Equal(options.Passthrough!.Endpoints, again.Passthrough!.Endpoints);
        Assert.Equal(options.Passthrough.Routes.OrderBy(r => r.Pattern), again.Passthrough.Routes.OrderBy(r => r.Pattern));
        Assert.Equal(options.Destinations.AllowNetworks, again.Destinations.AllowNetworks);
        Assert.Equal(options.Destinations.Map["a.test"], again.Destinations.Map["a.test"]);
        Assert.Equal(new DnsCacheOptions { MaxAge = TimeSpan.FromMilliseconds(1500), NegativeMaxAge = TimeSpan.FromMilliseconds(1200), MaxEntries = 10 }, again.Destinations.DnsCache);
        Assert.Equal(options.Limits, again.Limits);
    }

    /// <summary>
    /// The resolver mode is printed as configured. Auto was printed as the resolver it chose on the checking host, and the
    /// printed settings, read back, pinned that choice, which auto makes from nsswitch.conf at each start.
    /// </summary>
    [Theory]
    [InlineData("", "auto")]
    [InlineData(", \"dnsResolver\": \"auto\", \"dnsServers\": [\"127.0.0.1:5353\"]", "auto")]
    [InlineData(", \"dnsResolver\": \"builtin\"", "builtin")]
    [InlineData(", \"dnsResolver\": \"system\"", "system")]
    public void The_resolver_mode_is_printed_as_configured_and_reads_back_the_same(string resolver, string printed)
    {
        var (options, errors) = Read(JsonLayer("{ \"relay\": { \"connectPlain\": [\"127.0.0.1:0\"]" + resolver + " } }"));
        Assert.Empty(errors);
        var json = RelaySettings.ToJson(options, new LogOptions());
        Assert.Equal(printed, JsonDocument.Parse(json).RootElement.GetProperty("relay").GetProperty("dnsResolver").GetString());

        var (again, againErrors) = Read(JsonLayer(json));
        Assert.Empty(againErrors);
        Assert.Equal(options.Destinations.DnsResolverAuto, again.Destinations.DnsResolverAuto);
        Assert.Equal(options.Destinations.Dns is null, again.Destinations.Dns is null);
        Assert.Equal(options.Destinations.Dns?.GivenServers, again.Destinations.Dns?.GivenServers);
    }
}
