using System.Text.Json;
using Passage.Cli.Commands;
using Passage.Cli.Hosting;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>The <c>passage relay</c> and <c>passage config</c> commands as a user runs them.</summary>
public sealed class RelayCommandTests
{
    [Fact]
    public async Task Relay_help_explains_every_flag()
    {
        var (exit, help, _) = await PassageProcess.RunAsync(["relay", "--help"]);
        Assert.Equal(0, exit);
        // The usage line names the command operators type, not the assembly behind it.
        Assert.Contains("Usage:\n  passage relay [options]", help.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        var options = RelayCommand.Create().Options;
        Assert.True(options.Count >= 14);
        foreach (var option in options)
        {
            Assert.False(string.IsNullOrWhiteSpace(option.Description), $"{option.Name} has no description");
            Assert.Contains(option.Name, help);
        }
    }

    /// <summary>
    /// The logging flags mean the same in every role, and their help says so alike: the client's said nothing of the
    /// journal's format being its default under systemd, as it is for the relay and the tunnel.
    /// </summary>
    [Fact]
    public void Every_role_describes_its_logging_flags_alike()
    {
        var commands = new[] { RelayCommand.Create(), ClientCommand.Create(), TunnelCommand.Create() };
        foreach (var name in new[] { "--log-format", "--log-level" })
        {
            var descriptions = commands.Select(c => c.Options.Single(o => o.Name == name).Description!).ToArray();
            Assert.All(descriptions, d => Assert.StartsWith(descriptions[1], d, StringComparison.Ordinal));
        }
        Assert.EndsWith("Default systemd under systemd's journal, else text", ClientCommand.Create().Options.Single(o => o.Name == "--log-format").Description, StringComparison.Ordinal);
    }

    /// <summary>
    /// A file a setting names that cannot be read is said where the setting was given, as a value's syntax error is: the
    /// flag, the variable (it said neither, and the operator looked through every layer for it).
    /// </summary>
    [Fact]
    public async Task A_missing_file_a_setting_names_is_said_where_the_setting_was_given()
    {
        using var directory = new TemporaryDirectory();
        var missing = Path.Combine(directory.Path, "nothere");
        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["relay", "--connect-plain", "127.0.0.1:0", "--token-file", missing, "--key", directory.Path]);

        Assert.Equal(1, exit);
        Assert.Contains($"relay.tokenFile: '{missing}': no such file (from --token-file)", stderr);
        Assert.Contains($"relay.key: '{directory.Path}' is a directory, not a regular file (from --key)", stderr);

        var (_, _, fromVariable) = await PassageProcess.RunAsync(
            ["relay", "--connect-plain", "127.0.0.1:0"],
            environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__TOKENFILE"] = missing });
        Assert.Contains($"relay.tokenFile: '{missing}': no such file (from PASSAGE__RELAY__TOKENFILE)", fromVariable);
    }

    /// <summary>
    /// Settings read variable names ignoring case; an error names the variable as the environment spells it, not upper-cased
    /// into a name no variable has.
    /// </summary>
    [Fact]
    public async Task An_error_names_the_variable_as_the_environment_spells_it()
    {
        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["relay", "--connect-plain", "127.0.0.1:0"],
            environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__idleTimeout"] = "soon", ["PASSAGE__RELAY__Deny__0"] = "bad target/" });

        Assert.Equal(1, exit);
        Assert.Contains("relay.idleTimeout: 'soon'", stderr);
        Assert.Contains("(from PASSAGE__RELAY__idleTimeout)", stderr);
        Assert.Contains("(from PASSAGE__RELAY__Deny__0)", stderr);
        Assert.DoesNotContain("PASSAGE__RELAY__IDLETIMEOUT", stderr);
    }

    [Fact]
    public async Task A_bad_configuration_names_every_bad_key_and_starts_nothing()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """
            { "relay": { "passthrough": ["127.0.0.1:0"], "routes": { "a.test": ":443" }, "idleTimeout": "soon", "bogus": 1 } }
            """);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(
            ["relay", "--config", file, "--max-connections", "0", "--max-connections-per-client", "-2"],
            environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__DRAINTIMEOUT"] = "-1s" });

        Assert.Equal(1, exit);
        Assert.Contains("5 errors; nothing was started", stderr);
        Assert.Contains("relay.idleTimeout: 'soon'", stderr);
        Assert.Contains("relay.bogus: unknown setting (from relay.json)", stderr.Replace(file, "relay.json"));
        // Each names where it came from as the user wrote it: the flag, the variable.
        Assert.Contains("relay.maxConnections: '0' is not a whole number from 1 to 1000000 (from --max-connections)", stderr);
        Assert.Contains("relay.maxConnectionsPerClient: '-2' is not a whole number from 1 to 1000000 (from --max-connections-per-client)", stderr);
        Assert.Contains("relay.drainTimeout: '-1s'", stderr);
        Assert.Contains("(from PASSAGE__RELAY__DRAINTIMEOUT)", stderr);
        Assert.DoesNotContain("listening", stdout + stderr);
    }

    /// <summary>
    /// A FIFO given as the settings file, the key or the token file held the relay at start for ever (opening one waits
    /// for a writer; the relay did not even stop on SIGTERM): each is refused at once, naming its key and saying why. (A
    /// settings file that cannot be read is said alone, what it holds being unknown: the key and the token file are said
    /// without one.)
    /// </summary>
    [Fact]
    public async Task Fifos_for_the_settings_the_key_and_the_token_file_are_refused_at_once_each_by_its_key()
    {
        using var directory = new TemporaryDirectory();
        var config = Configuration.InputFileTests.MakeFifo(directory.Path, "relay.json");
        var key = Configuration.InputFileTests.MakeFifo(directory.Path, "relay.pem");
        var tokens = Configuration.InputFileTests.MakeFifo(directory.Path, "tokens");

        var (configExit, configOut, configError) = await PassageProcess.RunAsync(["relay", "--config", config, "--key", key, "--token-file", tokens]);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--key", key, "--token-file", tokens]);

        Assert.Equal(1, configExit);
        Assert.Contains("1 error; nothing was started", configError);
        Assert.Contains($"'{config}' is a FIFO (named pipe), not a regular file", configError);
        Assert.DoesNotContain("listening", configOut + configError);
        Assert.Equal(1, exit);
        Assert.Contains("2 errors; nothing was started", stderr);
        Assert.Contains($"relay.key: '{key}' is a FIFO (named pipe), not a regular file", stderr);
        Assert.Contains($"relay.tokenFile: '{tokens}' is a FIFO (named pipe), not a regular file", stderr);
        Assert.DoesNotContain("listening", stdout + stderr);

        // The certificate is written beside the key: a FIFO there is refused the same way, under the key's name.
        var regularKey = Path.Combine(directory.Path, "relay2.pem");
        var certificate = Configuration.InputFileTests.MakeFifo(directory.Path, "relay2.crt");
        var (certificateExit, _, certificateError) = await PassageProcess.RunAsync(["relay", "--key", regularKey]);
        Assert.Equal(1, certificateExit);
        Assert.Contains($"relay.key: its certificate: '{certificate}' is a FIFO (named pipe), not a regular file", certificateError);

        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        Assert.Equal(1, checkExit);
        Assert.Contains($"'{config}' is a FIFO (named pipe), not a regular file", checkError);
    }

    /// <summary>
    /// A key file that is a regular file but no identity passed <c>config check</c>, then failed the start: the settings
    /// read it, so both refuse it in one line naming <c>relay.key</c>, not with a stack; and the tunnel's <c>tls.key</c>
    /// the same way (its start said why without naming the key).
    /// </summary>
    [Fact]
    public async Task A_key_file_that_holds_no_identity_is_refused_by_config_check_and_start_naming_its_key()
    {
        using var directory = new TemporaryDirectory();
        var key = directory.Write("relay.pem", "not a key\n");

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--connect", "127.0.0.1:0", "--key", key]);

        Assert.Equal(1, exit);
        Assert.Contains($"1 error; nothing was started:\n  relay.key: '{key}' is not a PEM file", stderr.ReplaceLineEndings("\n"));
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("listening", stdout + stderr);

        var config = directory.Write("relay.json", $$"""{ "relay": { "key": {{JsonSerializer.Serialize(key)}} } }""");
        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        Assert.Equal(1, checkExit);
        Assert.Contains($"relay.key: '{key}' is not a PEM file", checkError);

        var peer = Passage.Identity.NodeIdentity.Create().NodeId;
        var tunnel = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "server", "peer": "{{peer}}", "bindAddress": "127.0.0.1:0", "httpConnectAddress": "127.0.0.1:1" },
              "tls": { "key": {{JsonSerializer.Serialize(key)}} } }
            """);
        foreach (string[] args in (string[][])[["config", "check", tunnel], ["tunnel", "--config", tunnel, "--check"], ["tunnel", "--config", tunnel]])
        {
            var (tunnelExit, tunnelOut, tunnelError) = await PassageProcess.RunAsync(args);
            Assert.True(tunnelExit == 1, string.Join(' ', args) + ": " + tunnelOut + tunnelError);
            Assert.Contains($"1 error; nothing was started:\n  tls.key: '{key}' is not a PEM file", tunnelError.ReplaceLineEndings("\n"));
        }
    }

    /// <summary>
    /// A key that is a symbolic link to nothing (a secret not mounted) passed <c>config check</c>, then failed the start
    /// ("does not exist"): both say what it is, naming <c>relay.key</c>, and no key is made through it.
    /// </summary>
    [Fact]
    public async Task A_key_linked_to_nothing_is_refused_by_config_check_and_start_alike()
    {
        using var directory = new TemporaryDirectory();
        var target = Path.Combine(directory.Path, "secrets", "relay.pem");
        var key = Path.Combine(directory.Path, "relay.pem");
        File.CreateSymbolicLink(key, target);
        var config = directory.Write("relay.json", $$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": {{JsonSerializer.Serialize(key)}} } }""");
        var expected = $"relay.key: '{key}' is a symbolic link to '{target}', which does not exist";

        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--config", config]);

        Assert.Equal(1, checkExit);
        Assert.Contains(expected, checkError);
        Assert.Equal(1, exit);
        Assert.Contains(expected, stderr);
        Assert.DoesNotContain("listening", stdout + stderr);
        Assert.False(Directory.Exists(Path.GetDirectoryName(target)));
    }

    /// <summary>
    /// A key to be created under a regular file (<c>--key /etc/passwd/x.pem</c>, a file where its directory should be)
    /// passed <c>config check</c>, relay and tunnel alike, and failed only at start: the check now says it in the start's words.
    /// </summary>
    [Fact]
    public async Task A_key_under_a_regular_file_is_refused_by_config_check_in_the_start_words()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("keys", "not a directory");
        var key = Path.Combine(file, "relay", "relay.pem");
        var relay = directory.Write("relay.json", $$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": {{JsonSerializer.Serialize(key)}} } }""");
        var tunnel = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "server", "peer": "{{Passage.Identity.NodeIdentity.Create().NodeId}}", "bindAddress": "127.0.0.1:0", "httpConnectAddress": "127.0.0.1:1" },
              "tls": { "key": {{JsonSerializer.Serialize(key)}} } }
            """);
        var words = $"'{file}' is a file, not a directory, so nothing can be written in it.";

        var (relayExit, _, relayError) = await PassageProcess.RunAsync(["config", "check", relay]);
        var (tunnelExit, _, tunnelError) = await PassageProcess.RunAsync(["config", "check", tunnel]);

        Assert.Equal(1, relayExit);
        Assert.Contains($"relay.key: {words}", relayError);
        Assert.Equal(1, tunnelExit);
        Assert.Contains($"tls.key: {words}", tunnelError);
        Assert.Equal("not a directory", File.ReadAllText(file));
    }

    /// <summary>
    /// A list in one environment variable is split at commas, a <c>~regex</c>'s among them (<c>{1,3}</c>): the error now
    /// says so and names the form that keeps each entry whole, which works.
    /// </summary>
    [Fact]
    public async Task A_regex_split_at_its_comma_in_an_environment_list_hints_at_one_variable_per_entry()
    {
        using var directory = new TemporaryDirectory();
        var config = directory.Write("relay.json", $$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": {{JsonSerializer.Serialize(Path.Combine(directory.Path, "relay.pem"))}} } }""");
        const string pattern = @"~^a{1,3}\.example\.org:443";

        var split = await PassageProcess.RunAsync(["config", "check", config], environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__ALLOW"] = pattern });
        var whole = await PassageProcess.RunAsync(["config", "check", config], environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__ALLOW__0"] = pattern });

        Assert.Equal(1, split.ExitCode);
        Assert.Contains("PASSAGE__RELAY__ALLOW is split at commas, a ~regex's too: give each entry its own variable, PASSAGE__RELAY__ALLOW__0,", split.StandardError);
        // Once, on the list's first error.
        Assert.Single(split.StandardError.Split('\n'), l => l.Contains("split at commas", StringComparison.Ordinal));
        Assert.True(whole.ExitCode == 0, whole.StandardError);
        Assert.Contains(JsonSerializer.Serialize(pattern), whole.StandardOutput);
    }

    /// <summary>
    /// <c>--token-file ""</c> (an unset shell variable) started a relay that asked nobody for credentials, and
    /// <c>--key ""</c> one with a new identity in the default place: each is an error naming its key, from flags and from
    /// the environment, and config check says the same.
    /// </summary>
    [Fact]
    public async Task An_empty_token_file_or_key_name_is_an_error_not_an_open_relay()
    {
        using var directory = new TemporaryDirectory();
        var key = Path.Combine(directory.Path, "relay.pem");

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--connect", "127.0.0.1:0", "--key", key, "--token-file", ""]);

        Assert.Equal(1, exit);
        Assert.Contains("1 error; nothing was started", stderr);
        Assert.Contains("relay.tokenFile: the file name is empty (leave the setting out for a relay that asks no credentials) (from --token-file)", stderr);
        Assert.DoesNotContain("listening", stdout + stderr);
        Assert.False(File.Exists(key));

        var config = directory.Write("relay.json", """{ "relay": { "connect": ["127.0.0.1:0"], "tokenFile": null } }""");
        var (checkExit, _, checkError) = await PassageProcess.RunAsync(
            ["config", "check", config],
            environment: new Dictionary<string, string?> { ["PASSAGE__RELAY__KEY"] = "", ["PASSAGE__RELAY__TOKENFILE"] = "" });
        Assert.Equal(1, checkExit);
        Assert.Contains("2 errors", checkError);
        Assert.Contains("relay.key: the file name is empty (leave the setting out for the default, passage-data/relay.pem) (from PASSAGE__RELAY__KEY)", checkError);
        Assert.Contains("relay.tokenFile: the file name is empty (leave the setting out for a relay that asks no credentials) (from PASSAGE__RELAY__TOKENFILE)", checkError);
    }

    /// <summary>
    /// A list set by a variable left empty (<c>PASSAGE__RELAY__CLIENTIDS="$IDS"</c>, unset) read as no entries, and replaced
    /// the file's list whole: the relay's client pins and deny rules were dropped without a word, and a relay that asked for
    /// a client certificate took anyone. Each is an error naming its variable, as an empty file name is.
    /// </summary>
    [Fact]
    public async Task A_list_variable_without_an_entry_is_an_error_not_an_empty_list()
    {
        var (exit, stdout, stderr) = await CheckAsync(
            """{ "relay": { "connectPlain": ["127.0.0.1:0"], "clientIds": ["qz3s5z3worrqn65fv7jk272cdid3xu5k5glwyr6xqcuj5eylqefa"], "deny": ["internal.example:*"] } }""",
            new Dictionary<string, string?> { ["PASSAGE__RELAY__CLIENTIDS"] = "", ["PASSAGE__RELAY__DENY"] = " , " });

        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.Contains("2 errors", stderr);
        Assert.Contains("relay.clientIds: empty; leave the setting out, or give it at least one entry (from PASSAGE__RELAY__CLIENTIDS)", stderr);
        Assert.Contains("relay.deny: empty; leave the setting out, or give it at least one entry (from PASSAGE__RELAY__DENY)", stderr);
    }

    /// <summary>
    /// An error quotes the value it refuses: one holding a line break and an escape sequence was written as it is, so that
    /// it could forge another error line, or clear the operator's terminal. It is escaped as the log's lines are.
    /// </summary>
    [Fact]
    public async Task A_refused_value_is_quoted_with_its_control_characters_escaped()
    {
        var (exit, _, stderr) = await CheckAsync(
            """{ "relay": { "connectPlain": ["127.0.0.1:0"] } }""",
            new Dictionary<string, string?> { ["PASSAGE__RELAY__IDLETIMEOUT"] = "5s\n  relay.forged: \u001b[2J" });

        Assert.Equal(1, exit);
        Assert.Contains("relay.idleTimeout: '5s\\x0A  relay.forged: \\x1B[2J' is not a duration", stderr);
        Assert.DoesNotContain("\u001b", stderr);
        Assert.DoesNotContain("\n  relay.forged", stderr);
    }

    /// <summary>
    /// A list given both as one variable and as numbered ones (the README's way for a <c>~regex</c> holding a comma) took
    /// the one variable's entries and left the numbered ones out without a word: a deny rule was dropped.
    /// </summary>
    [Fact]
    public async Task A_list_given_both_as_one_variable_and_as_numbered_ones_is_an_error()
    {
        var (exit, stdout, stderr) = await CheckAsync(
            """{ "relay": { "connectPlain": ["127.0.0.1:0"] } }""",
            new Dictionary<string, string?> { ["PASSAGE__RELAY__DENY"] = "a.example:443", ["PASSAGE__RELAY__DENY__0"] = "~^b{1,3}\\.example$:443" });

        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.Contains(
            "relay.deny: given both as PASSAGE__RELAY__DENY and as numbered variables (PASSAGE__RELAY__DENY__0, ...); give the list one way (from PASSAGE__RELAY__DENY)",
            stderr);
    }

    /// <summary><c>passage config check</c> of a relay's settings <paramref name="json"/> with <paramref name="environment"/>.</summary>
    private static async Task<(int Exit, string Stdout, string Stderr)> CheckAsync(string json, Dictionary<string, string?> environment)
    {
        using var directory = new TemporaryDirectory();
        var config = directory.Write("relay.json", json);
        return await PassageProcess.RunAsync(["config", "check", config], environment: environment);
    }

    /// <summary>
    /// A name a certificate cannot carry (<c>--name "relay example"</c>, a URL) passed the settings and <c>config
    /// check</c>, then ended the start in an unhandled exception with its stack, as the new key was being made: it is a
    /// setting's error, naming <c>relay.names</c>, before anything starts, in both.
    /// </summary>
    [Fact]
    public async Task A_name_no_certificate_can_carry_is_an_error_naming_relay_names()
    {
        using var directory = new TemporaryDirectory();
        var key = Path.Combine(directory.Path, "relay.pem");

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["relay", "--connect", "127.0.0.1:0", "--key", key, "--name", "relay.test", "--name", "not a name"]);

        Assert.Equal(1, exit);
        Assert.Contains("1 error; nothing was started", stderr);
        Assert.Contains("relay.names[1]: 'not a name' is neither a DNS name nor an IP address (from --name)", stderr);
        Assert.DoesNotContain("   at ", stderr);
        Assert.DoesNotContain("listening", stdout + stderr);
        Assert.False(File.Exists(key));

        var config = directory.Write("relay.json", """{ "relay": { "names": ["https://relay.test/"] } }""");
        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        Assert.Equal(1, checkExit);
        Assert.Contains("relay.names[0]: 'https://relay.test/' is neither a DNS name nor an IP address", checkError);
    }

    /// <summary>
    /// A token file that turns bad after the settings were checked (swapped for a FIFO, here given straight to the
    /// relay, whose check is the settings'): the start fails with an error the command reports in one line, naming
    /// <c>relay.tokenFile</c>, where it used to be an <see cref="ArgumentException"/> that crashed it with a stack.
    /// </summary>
    [Fact]
    public async Task A_token_file_bad_at_start_is_an_error_naming_its_key()
    {
        using var directory = new TemporaryDirectory();
        var tokens = Configuration.InputFileTests.MakeFifo(directory.Path, "tokens");

        var error = await Assert.ThrowsAsync<InvalidDataException>(
            () => Relay.Connect.ConnectHarness.StartAsync(o => o with { TokenFile = tokens }).WaitAsync(Timeouts.Default));
        Assert.Equal($"relay.tokenFile: '{tokens}' is a FIFO (named pipe), not a regular file", error.Message);
    }

    /// <summary>A settings file is read to a bound, not whole whatever its size: beyond it, valid JSON or not, it is an error.</summary>
    [Fact]
    public async Task A_settings_file_over_16_MiB_is_refused()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", "{}" + new string(' ', 16 * 1024 * 1024));

        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", file]);

        Assert.Equal(1, exit);
        Assert.Contains($"'{file}' is larger than 16777216 bytes", stderr);
    }

    /// <summary>
    /// A switch left off the command line says nothing: the file's setting stands. System.CommandLine gives an unused
    /// boolean option an implicit result, which the flags layer took for a given <c>false</c>: the file's
    /// <c>requireTls</c>, <c>allowPrivate</c> and <c>insecurePlain</c> were overridden, silently off.
    /// </summary>
    [Fact]
    public void Switches_left_off_the_command_line_leave_the_files_settings()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """
            { "relay": { "connect": ["127.0.0.1:0"], "connectPlain": ["0.0.0.0:0"], "insecurePlain": true, "requireTls": true, "allowPrivate": true } }
            """);
        var flags = RelayCommand.Flags(RelayCommand.Create().Parse(["--config", file]));
        Assert.Empty(flags.Values);

        var (relay, _, errors) = RelayCommand.Load(file, flags.Values, flags.Errors);
        Assert.Empty(errors);
        Assert.True(relay.Connect?.RequireTls);
        Assert.True(relay.Destinations.AllowPrivate);

        var given = RelayCommand.Flags(RelayCommand.Create().Parse(["--config", file, "--require-tls"]));
        Assert.Equal([new("relay:requireTls", "true")], given.Values);
    }

    [Fact]
    public async Task Config_check_accepts_the_client_example()
    {
        var example = Path.Combine(RepositoryRoot(), "deploy", "client.json");
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", example]);
        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        Assert.Equal("127.0.0.1:1080", json.RootElement.GetProperty("client").GetProperty("socks")[0].GetString());
    }

    /// <summary>
    /// A client file's effective settings are printed, defaults filled in, as the relay's are (it said only "valid client
    /// settings"), and read back as the same settings; the token and the proxies' users are said to be set, never shown.
    /// </summary>
    [Fact]
    public async Task Config_check_prints_the_effective_client_configuration_without_its_secrets()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.Write("client.json", $$"""
            { "client": { "relays": ["{{id}}@[::1]:8443", "{{id}}@relay.example:443"], "http": "off", "socks": ["127.0.0.1:1081"],
              "socksUsers": { "alice": "s3cret-pw" }, "idleTimeout": "infinite", "admin": "127.0.0.1:9101" },
              "log": { "level": "debug" } }
            """);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(
            ["config", "check", file], environment: new Dictionary<string, string?> { ["PASSAGE__CLIENT__TOKEN"] = "t0ken-value" });
        Assert.True(exit == 0, stderr);
        Assert.DoesNotContain("s3cret-pw", stdout + stderr);
        Assert.DoesNotContain("alice", stdout);
        Assert.DoesNotContain("t0ken-value", stdout + stderr);
        Assert.Contains("/* client.token is set (not shown) */", stdout);
        Assert.Contains("/* client.socksUsers: 1 user (not shown) */", stdout);
        var options = new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip };
        using (var json = JsonDocument.Parse(stdout, options))
        {
            var client = json.RootElement.GetProperty("client");
            Assert.Equal([$"{id}@[::1]:8443", $"{id}@relay.example:443"], client.GetProperty("relays").EnumerateArray().Select(r => r.GetString()));
            Assert.Equal("off", client.GetProperty("http").GetString());
            Assert.Equal("infinite", client.GetProperty("idleTimeout").GetString());
            Assert.Equal("30s", client.GetProperty("answerTimeout").GetString());
            Assert.Equal("127.0.0.1:9101", client.GetProperty("admin").GetString());
            Assert.Equal("debug", json.RootElement.GetProperty("log").GetProperty("level").GetString());
        }

        // Read back (without the secrets it does not hold), it is the same settings.
        var printed = directory.Write("printed.json", stdout);
        var (again, againOut, againErrors) = await PassageProcess.RunAsync(["config", "check", printed]);
        Assert.True(again == 0, againErrors);
        Assert.Equal(
            string.Join('\n', stdout.Split('\n').Where(l => !l.TrimStart().StartsWith("/*", StringComparison.Ordinal))),
            againOut);
    }

    /// <summary>
    /// A tunnel file's effective settings are printed, defaults filled in (it said only "valid tunnel settings"), and read
    /// back the same; a small factor too (0.00001 was printed 1E-05, which the reader refused, as it refused 1e-5 written so).
    /// </summary>
    [Theory]
    [InlineData("0.25", 0.25)]
    [InlineData("0.00001", 0.00001)]
    [InlineData("1e-5", 0.00001)]
    public async Task Config_check_prints_the_effective_tunnel_configuration_which_reads_back_the_same(string factor, double expected)
    {
        using var directory = new TemporaryDirectory();
        var peer = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "server", "peer": "{{peer}}", "bindAddress": "127.0.0.1:0", "httpConnectAddress": "[::1]:8080",
                           "adminBindAddress": "127.0.0.1:9102" },
              "tls": { "key": {{JsonSerializer.Serialize(directory.File("server.pem"))}} },
              "transport": { "socketReceiveBufferSize": 65536, "compress": true },
              "system": { "watchdogFactor": {{factor}}, "backendTimeout": "0", "idleTimeout": "infinite" } }
            """);
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);
        Assert.True(exit == 0, stderr);
        using (var json = JsonDocument.Parse(stdout))
        {
            var general = json.RootElement.GetProperty("general");
            Assert.Equal("server", general.GetProperty("mode").GetString());
            Assert.Equal(peer.ToString(), general.GetProperty("peer").GetString());
            Assert.Equal("[::1]:8080", general.GetProperty("httpConnectAddress").GetString());
            Assert.Equal("127.0.0.1:20080", general.GetProperty("httpBindAddress").GetString());
            var transport = json.RootElement.GetProperty("transport");
            Assert.Equal(65536, transport.GetProperty("socketReceiveBufferSize").GetInt32());
            Assert.False(transport.TryGetProperty("socketSendBufferSize", out _));
            Assert.True(transport.GetProperty("compress").GetBoolean());
            var system = json.RootElement.GetProperty("system");
            Assert.Equal(expected, system.GetProperty("watchdogFactor").GetDouble());
            Assert.DoesNotContain("E", system.GetProperty("watchdogFactor").GetRawText(), StringComparison.OrdinalIgnoreCase);
            Assert.Equal("0ms", system.GetProperty("backendTimeout").GetString());
            Assert.Equal("infinite", system.GetProperty("idleTimeout").GetString());
            Assert.Equal("30s", system.GetProperty("drainTimeout").GetString());
        }

        var printed = directory.Write("printed.json", stdout);
        var (again, againOut, againErrors) = await PassageProcess.RunAsync(["config", "check", printed]);
        Assert.True(again == 0, againErrors);
        Assert.Equal(stdout, againOut);
    }

    [Fact]
    public async Task Config_check_prints_the_effective_configuration_with_defaults()
    {
        var example = Path.Combine(RepositoryRoot(), "deploy", "relay.json");
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", example]);
        Assert.True(exit == 0, stderr);
        using var json = JsonDocument.Parse(stdout);
        var relay = json.RootElement.GetProperty("relay");
        Assert.Equal("127.0.0.1:9443", relay.GetProperty("passthrough")[0].GetString());
        Assert.Equal(":443", relay.GetProperty("routes").GetProperty("api.example.org").GetString());
        Assert.Equal("5m", relay.GetProperty("idleTimeout").GetString());
    }

    /// <summary>
    /// The DNS servers printed are those given: resolv.conf's were printed, and the printed settings, read back, pinned
    /// them, so that the relay no longer followed resolv.conf as it changed.
    /// </summary>
    [Theory]
    [InlineData("", "[]")]
    [InlineData(", \"dnsServers\": [\"127.0.0.1:5353\"]", "[\"127.0.0.1:5353\"]")]
    public async Task Config_check_prints_the_DNS_servers_given_not_those_of_resolv_conf(string servers, string printed)
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", "{ \"relay\": { \"connectPlain\": [\"127.0.0.1:0\"], \"dnsResolver\": \"builtin\"" + servers + " } }");
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);
        Assert.True(exit == 0, stderr);
        var relay = JsonDocument.Parse(stdout).RootElement.GetProperty("relay");
        Assert.Equal("builtin", relay.GetProperty("dnsResolver").GetString());
        Assert.Equal(printed, relay.GetProperty("dnsServers").GetRawText().Replace(" ", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal));
    }

    /// <summary>
    /// Under 1024 open files and 1 GiB, a relay starts with 352 connections and tunnels (a share of the descriptors each)
    /// and a window that fits 352 tunnels in half of 1 GiB (512 MiB / 352, in whole pages): config check says so, and
    /// prints the configured values, which read back as the same settings.
    /// </summary>
    [Fact]
    public async Task Config_check_shows_the_values_a_relay_would_start_with_where_the_limits_lower_them()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "relay": { "connectPlain": ["127.0.0.1:0"] } }""");
        await using var check = PassageProcess.Start(
            ["config", "check", file], new Dictionary<string, string?> { ["DOTNET_GCHeapHardLimit"] = "0x40000000" }, openFiles: (1024, 1024));
        await check.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(check.ExitCode == 0, check.Output);
        Assert.Equal(
            [
                "relay.maxConnections: 352 at start (configured 4096; fitted to the open-file limit)",
                "relay.maxTunnels: 352 at start (configured 4096; fitted to the open-file limit)",
                "relay.streamWindow: 1523712 at start (configured 4194304; fitted to memory)",
            ],
            check.StandardError.ReplaceLineEndings("\n").Split('\n').Where(l => l.StartsWith("relay.", StringComparison.Ordinal)));
        Assert.Contains("LimitNOFILE=", check.StandardError);
        var relay = JsonDocument.Parse(check.StandardOutput).RootElement.GetProperty("relay");
        Assert.Equal(4096, relay.GetProperty("maxTunnels").GetInt32());
        Assert.Equal(4 * 1024 * 1024, relay.GetProperty("streamWindow").GetInt32());
    }

    [Fact]
    public async Task Config_check_adds_nothing_when_the_configured_values_fit()
    {
        using var directory = new TemporaryDirectory();
        // 8 tunnels × 4 MiB fit in half of 1 GiB; 100 connections and 8 tunnels in 1024 open files.
        var file = directory.Write("relay.json", """{ "relay": { "connectPlain": ["127.0.0.1:0"], "maxTunnels": 8, "maxConnections": 100 } }""");
        await using var check = PassageProcess.Start(
            ["config", "check", file], new Dictionary<string, string?> { ["DOTNET_GCHeapHardLimit"] = "0x40000000" }, openFiles: (1024, 1024));
        await check.WaitForExitAsync(TimeSpan.FromSeconds(60));

        Assert.True(check.ExitCode == 0, check.Output);
        Assert.Equal("", check.StandardError.Trim());
    }

    [Fact]
    public async Task Config_check_of_a_file_that_is_not_json_says_so()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("broken.json", "{\n  \"relay\": {\n    \"connect\": \"127.0.0.1:0\"\n    \"idleTimeout\": \"5m\"\n  }\n}\n");
        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", file]);
        Assert.Equal(1, exit);
        // Where the reader stopped, counted from 1: the comma missing after line 3.
        Assert.Contains("not valid JSON: line 4, byte 5: ", stderr);
    }

    /// <summary>
    /// A file saved in Latin-1 (a hand-edited password, <c>caf\xe9</c>) was read with U+FFFD for the byte that is no UTF-8,
    /// without a word: the check passed and the proxy took another password than the one written. It is refused, naming the
    /// file and where the byte is, not quoting it (it may be part of a secret).
    /// </summary>
    [Fact]
    public async Task Config_check_refuses_a_file_that_is_not_utf8_naming_where()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.File("client.json");
        File.WriteAllBytes(file, [.. System.Text.Encoding.UTF8.GetBytes($$"""
            { "client": { "relays": ["{{id}}@127.0.0.1:8443"], "http": ["127.0.0.1:0"],
              "httpUsers": { "alice": "caf
            """), 0xE9, .. "\" } } }\n"u8]);

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);

        Assert.Equal(1, exit);
        Assert.Contains($"{file}: not valid UTF-8: line 2, byte 31 is no UTF-8 text; save the file as UTF-8", stderr);
        Assert.DoesNotContain("caf", stderr.Replace(file, "client.json", StringComparison.Ordinal));
        Assert.Equal("", stdout);
    }

    /// <summary>
    /// A client's settings file that cannot be read was one error to <c>config check</c> and two to <c>passage client</c>,
    /// which added "no relay" (the relays are in the file), while the check, which cannot tell from the file whose settings
    /// it holds, called the client's variables unknown. Both say the file's error alone, in the same words; a tunnel's too.
    /// </summary>
    [Theory]
    [InlineData("client")]
    [InlineData("tunnel")]
    public async Task A_settings_file_that_cannot_be_read_is_one_error_the_same_to_the_check_and_the_start(string command)
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.File($"{command}.json");
        var section = command == "client" ? $$"""{ "client": { "relays": ["{{id}}@127.0.0.1:8443"], "token": "caf""" : """{ "general": { "mode": "caf""";
        File.WriteAllBytes(file, [.. System.Text.Encoding.UTF8.GetBytes(section), 0xE9, .. "\" } }\n"u8]);
        var variable = command == "client" ? "PASSAGE__CLIENT__IDLETIMEOUT" : "PASSAGE__GENERAL__PEERHOSTNAME";
        var environment = new Dictionary<string, string?> { [variable] = "x" };

        var (checkExit, checkOut, checkError) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);
        var (startExit, startOut, startError) = await PassageProcess.RunAsync([command, "--config", file], environment: environment);

        Assert.Equal(1, checkExit);
        Assert.Equal(1, startExit);
        Assert.Equal("", checkOut + startOut);
        var expected = $"passage: the configuration has 1 error; nothing was started:\n  {file}: not valid UTF-8: line 1, byte ";
        Assert.StartsWith(expected, checkError.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Equal(checkError, startError);
    }

    /// <summary>
    /// A password given in an environment variable that is no UTF-8 (typed in a Latin-1 terminal): the runtime reads the
    /// variable with U+FFFD where the bytes were, and the proxy took a password other than the one written, one no client
    /// could send. It is an error naming the variable, the password not echoed. The variable's bytes are set by a shell,
    /// as the runtime would write any text given to it as UTF-8.
    /// </summary>
    [Fact]
    public async Task Config_check_refuses_a_password_variable_that_is_not_utf8()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.Write("client.json", $$"""{ "client": { "relays": ["{{id}}@127.0.0.1:8443"], "http": ["127.0.0.1:0"] } }""");
        var info = new System.Diagnostics.ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add("PASSAGE__CLIENT__HTTPUSERS__alice=\"$(printf 'caf\\351')\" exec dotnet \"$0\" config check \"$1\"");
        info.ArgumentList.Add(PassageProcess.EntryAssembly);
        info.ArgumentList.Add(file);
        using var process = System.Diagnostics.Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = await process.StandardError.ReadToEndAsync().WaitAsync(Timeouts.Default);
        await process.WaitForExitAsync().WaitAsync(Timeouts.Default);

        Assert.Equal(1, process.ExitCode);
        Assert.Contains("client.httpUsers.alice: the password holds U+FFFD, which stands for bytes that are no UTF-8 text: give it as UTF-8 (a settings file takes the character itself, if it is meant) (from PASSAGE__CLIENT__HTTPUSERS__alice)", stderr);
        Assert.DoesNotContain("caf", stderr);
        Assert.Equal("", await stdout);
    }

    /// <summary>
    /// A password written with a <c>\u</c> escape of half a surrogate pair is JSON, but no text: reading it threw, and
    /// <c>config check</c> and every command given the file ended in an unhandled exception. It is an error naming where.
    /// </summary>
    [Fact]
    public async Task Config_check_refuses_an_escape_of_half_a_surrogate_pair_naming_where()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.Write("client.json", $$"""
            { "client": { "relays": ["{{id}}@127.0.0.1:8443"], "http": ["127.0.0.1:0"],
              "httpUsers": { "alice": "caf\ud800" } } }
            """);

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);

        Assert.Equal(1, exit);
        Assert.Contains($"{file}: not valid text: line 2, byte 31 begins a \\u escape of half a UTF-16 surrogate pair", stderr);
        Assert.DoesNotContain("Unhandled", stderr);
        Assert.Equal("", stdout);
    }

    /// <summary>
    /// The position of broken JSON counted the bytes of the text as UTF-8 whatever the file was saved in: in a UTF-16 file,
    /// half the bytes that lead to the problem. It counts them as the file holds them (its byte order mark on the first
    /// line), the same as before for UTF-8 without one.
    /// </summary>
    [Theory]
    [InlineData("utf-8", false)]
    [InlineData("utf-8", true)]
    [InlineData("utf-16", true)]
    [InlineData("utf-16BE", true)]
    [InlineData("utf-32", true)]
    public async Task Config_check_gives_the_position_of_broken_json_in_the_file_as_saved(string name, bool byteOrderMark)
    {
        using var directory = new TemporaryDirectory();
        var encoding = System.Text.Encoding.GetEncoding(name);
        var preamble = byteOrderMark ? encoding.GetPreamble() : [];
        // The comma missing before "idleTimeout", on the first line and on the third, after a character of two UTF-8 bytes.
        var first = """{ "relay": { "connect": "é" "idleTimeout": "5m" } }""";
        var third = "{\n  \"relay\": {\n    \"connect\": \"é\" \"idleTimeout\": \"5m\"\n  }\n}\n";
        var one = directory.File("one.json");
        var three = directory.File("three.json");
        File.WriteAllBytes(one, [.. preamble, .. encoding.GetBytes(first)]);
        File.WriteAllBytes(three, [.. preamble, .. encoding.GetBytes(third)]);

        var (exitOne, _, stderrOne) = await PassageProcess.RunAsync(["config", "check", one]);
        var (exitThree, _, stderrThree) = await PassageProcess.RunAsync(["config", "check", three]);

        Assert.Equal(1, exitOne);
        Assert.Equal(1, exitThree);
        var unit = encoding.GetByteCount("a");
        // 28 characters, one of them two bytes in UTF-8, before the quote that should have been a comma.
        var expectedOne = preamble.Length + (unit == 1 ? 29 : 28 * unit);
        var expectedThree = unit == 1 ? 20 : 19 * unit;
        Assert.Contains($"{one}: not valid JSON: line 1, byte {expectedOne + 1}: ", stderrOne);
        Assert.Contains($"{three}: not valid JSON: line 3, byte {expectedThree + 1}: ", stderrThree);
    }

    /// <summary>
    /// A key written twice was "not valid JSON: A duplicate key 'relay:connect' was found.", in a form no file is written in.
    /// A section written twice (<c>"relay"</c>, once more in other letters) was merged: the check passed, and the relay took
    /// settings from both objects, where a JSON reader keeps the last.
    /// </summary>
    [Theory]
    [InlineData("""{ "relay": { "connect": "127.0.0.1:0", "idleTimeout": "5m", "connect": "127.0.0.1:1" } }""", "relay.connect")]
    [InlineData("""{ "relay": { "connectPlain": ["127.0.0.1:0"] }, "Relay": { "idleTimeout": "5s" } }""", "Relay")]
    public async Task Config_check_names_a_key_set_twice(string json, string key)
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("twice.json", json);

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file]);

        Assert.Equal(1, exit);
        Assert.Equal("", stdout);
        Assert.Contains($"  {key}: set twice in {file}; a key holds one value", stderr.ReplaceLineEndings("\n").Split('\n'));
    }

    /// <summary>
    /// <c>PASSAGE_RELAY__MAXTUNNELS=5</c>, one underscore short, was not read and not said: the check passed and the relay
    /// started without the limit the operator believed set. Both refuse it, naming the variable meant; another program's
    /// variable that begins so, <c>PASSAGE_HOME</c>, is left alone.
    /// </summary>
    [Fact]
    public async Task A_variable_one_underscore_short_is_refused_by_the_check_and_the_start()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "relay": { "connectPlain": ["127.0.0.1:0"] } }""");
        var environment = new Dictionary<string, string?> { ["PASSAGE_HOME"] = directory.Path };

        var (cleanExit, _, cleanError) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);
        environment["PASSAGE_RELAY__MAXTUNNELS"] = "5";
        var (checkExit, checkOut, checkError) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);
        var (startExit, startOut, startError) = await PassageProcess.RunAsync(["relay", "--config", file], environment: environment);

        Assert.True(cleanExit == 0, cleanError);
        Assert.Equal(1, checkExit);
        Assert.Equal(1, startExit);
        Assert.Equal("", checkOut + startOut);
        Assert.Equal(
            [
                "passage: the configuration has 1 error; nothing was started:",
                "  PASSAGE_RELAY__MAXTUNNELS: not read: a setting's variable begins with PASSAGE__, two underscores (meant PASSAGE__RELAY__MAXTUNNELS?)",
            ],
            checkError.ReplaceLineEndings("\n").TrimEnd().Split('\n'));
        Assert.Equal(checkError, startError);
    }

    /// <summary>
    /// A key written with a colon is read by the configuration as a path: <c>"relay:maxTunnels": 5</c> set
    /// <c>relay.maxTunnels</c>, and errors named it so, dotted (<c>relay.idle: unknown setting</c> for <c>"idle:Timeout"</c>),
    /// a key the file does not spell. It is refused, by the check and the start, naming the key as the file writes it.
    /// </summary>
    [Theory]
    [InlineData("""{ "relay": { "connectPlain": ["127.0.0.1:0"] }, "relay:maxTunnels": 5 }""", "\"relay:maxTunnels\"", "relay.maxTunnels")]
    [InlineData("""{ "relay": { "connectPlain": ["127.0.0.1:0"], "idle:Timeout": "5s" } }""", "relay.\"idle:Timeout\"", "relay.idle.Timeout")]
    [InlineData("""{ "relay": { "connectPlain": ["127.0.0.1:0"], "idleTimeout": "5s" }, "relay:idleTimeout": "1s" }""", "\"relay:idleTimeout\"", "relay.idleTimeout")]
    public async Task A_key_written_with_a_colon_is_refused_naming_it_as_written(string json, string written, string path)
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("colon.json", json);

        var (checkExit, checkOut, checkError) = await PassageProcess.RunAsync(["config", "check", file]);
        var (startExit, startOut, startError) = await PassageProcess.RunAsync(["relay", "--config", file]);

        Assert.Equal(1, checkExit);
        Assert.Equal(1, startExit);
        Assert.Equal("", checkOut + startOut);
        var error = $"  {written}: a key cannot hold a colon (in {file}): settings would read it as the path {path}";
        Assert.Equal(["passage: the configuration has 1 error; nothing was started:", error], checkError.ReplaceLineEndings("\n").TrimEnd().Split('\n'));
        Assert.Equal(checkError, startError);
    }

    /// <summary>
    /// A proxy user written as the flag writes one, <c>USER:PASSWORD</c>, as a users map's key: the password is not echoed
    /// by the error, which named the key whole (and again as a path); the user's name is.
    /// </summary>
    [Fact]
    public async Task A_map_entry_s_name_with_a_colon_is_refused_without_what_follows_it()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var file = directory.Write("client.json", $$"""
            { "client": { "relays": ["{{id}}@127.0.0.1:8443"], "http": ["127.0.0.1:0"], "httpUsers": { "alice:hunter2": "" } } }
            """);

        var (checkExit, checkOut, checkError) = await PassageProcess.RunAsync(["config", "check", file]);
        var (startExit, startOut, startError) = await PassageProcess.RunAsync(["client", "--config", file]);

        Assert.Equal(1, checkExit);
        Assert.Equal(1, startExit);
        Assert.Equal("", checkOut + startOut);
        Assert.Contains($"  client.httpUsers.\"alice:...\": a key cannot hold a colon (in {file}): settings would read it as a path below client.httpUsers.alice (what follows the colon in a map entry's name is not shown: it may be a password)", checkError.ReplaceLineEndings("\n").Split('\n'));
        Assert.DoesNotContain("hunter2", checkError + startError, StringComparison.Ordinal);
        Assert.Equal(checkError, startError);
    }

    /// <summary>A JSON boolean where another value goes was quoted as .NET spells it, <c>'True'</c>, which the file does not hold.</summary>
    [Fact]
    public async Task Config_check_quotes_a_boolean_as_the_file_writes_it()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "relay": { "connectPlain": ["127.0.0.1:0"], "idleTimeout": true, "maxConnections": false, "requireTls": true } }""");

        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", file]);

        Assert.Equal(1, exit);
        Assert.Contains("relay.idleTimeout: 'true' is not a duration", stderr);
        Assert.Contains("relay.maxConnections: 'false' is not a whole number", stderr);
        Assert.Contains("2 errors", stderr);
    }

    /// <summary>
    /// A section given a single value (<c>"relay": 5</c>, <c>PASSAGE__LOG=debug</c>) holds no setting: it was read as no
    /// section at all, so the check passed with the defaults and the relay started with them. Each is an error naming it;
    /// an empty one (<c>"log": []</c>) sets nothing and is none.
    /// </summary>
    [Fact]
    public async Task A_section_given_a_single_value_is_an_error_naming_it()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "relay": 5, "log": [] }""");
        var environment = new Dictionary<string, string?> { ["PASSAGE__LOG"] = "debug" };

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);
        var (started, _, refused) = await PassageProcess.RunAsync(["relay", "--config", file], environment: environment);

        foreach (var (code, errors) in new[] { (exit, stderr), (started, refused) })
        {
            Assert.Equal(1, code);
            Assert.Contains("2 errors; nothing was started", errors);
            Assert.Contains($"relay: expected a section, an object of settings, not the single value '5' (from {file})", errors);
            Assert.Contains("log: expected a section, an object of settings, not the single value 'debug' (from PASSAGE__LOG)", errors);
        }
        Assert.Equal("", stdout);
    }

    /// <summary>
    /// A key no reader knows is unknown, whatever it holds: given a single value (<c>"relay": 5</c> mistyped as
    /// <c>"rleay": 5</c>, a setting set without its section, <c>PASSAGE__TOKEN</c>) it was reported twice, once as a
    /// section expected there (no section is), with its value (a token's, say) written out. A section's single value is
    /// still one error.
    /// </summary>
    [Fact]
    public async Task An_unknown_key_given_a_single_value_is_unknown_once()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "rleay": 5, "log": "debug" }""");
        var environment = new Dictionary<string, string?> { ["PASSAGE__TOKEN"] = "s3cret" };

        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);

        Assert.Equal(1, exit);
        Assert.Contains("3 errors; nothing was started", stderr);
        Assert.Contains($"rleay: unknown setting (from {file})", stderr);
        Assert.Contains("  PASSAGE__TOKEN: unknown setting\n", stderr.ReplaceLineEndings("\n"), StringComparison.Ordinal);
        Assert.Contains($"log: expected a section, an object of settings, not the single value 'debug' (from {file})", stderr);
        Assert.DoesNotContain("s3cret", stderr);
    }

    /// <summary>
    /// An unknown key is named as its source spells it. From the environment it was named as the configuration holds it
    /// (<c>Relay.Shade</c>, <c>LOGS</c>, with <c>PASSAGE__LOGS</c> as its source), which no variable is: each variable is
    /// named as set. A file's keeps the file's spelling.
    /// </summary>
    [Fact]
    public async Task Config_check_names_an_unknown_key_as_its_source_spells_it()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("relay.json", """{ "Relay": { "connectPlain": ["127.0.0.1:0"], "Colour": 1 } }""");
        var environment = new Dictionary<string, string?> { ["PASSAGE__Relay__Shade"] = "red", ["PASSAGE__LOGS__LEVEL"] = "debug" };

        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", file], environment: environment);

        Assert.Equal(1, exit);
        var lines = stderr.ReplaceLineEndings("\n").Split('\n');
        Assert.Contains("passage: the configuration has 3 errors; nothing was started:", lines);
        Assert.Contains($"  Relay.Colour: unknown setting (from {file})", lines);
        Assert.Contains("  PASSAGE__Relay__Shade: unknown setting", lines);
        Assert.Contains("  PASSAGE__LOGS__LEVEL: unknown setting", lines);
    }

    [Fact]
    public async Task Config_check_of_a_missing_file_says_so()
    {
        var (exit, _, stderr) = await PassageProcess.RunAsync(["config", "check", "/nonexistent/passage.json"]);
        Assert.Equal(1, exit);
        Assert.Contains("no such file", stderr);
    }

    [Fact]
    public async Task The_relay_takes_nothing_from_its_working_directory_or_the_frameworks_environment_variables()
    {
        // The framework's default web builders read appsettings.json from the working directory (and
        // watch that whole tree for changes to it) and Kestrel__* or ASPNETCORE_URLS variables. Passage's
        // servers inside the relay (admin, HTTP/2 CONNECT) must open no listener because of them.
        using var directory = new TemporaryDirectory();
        var (filePort, variablePort, urlsPort) = (Tunnel.TunnelPair.FreePort(), Tunnel.TunnelPair.FreePort(), Tunnel.TunnelPair.FreePort());
        directory.Write("appsettings.json", $$"""{ "Kestrel": { "Endpoints": { "stray": { "Url": "http://127.0.0.1:{{filePort}}" } } } }""");
        Directory.CreateDirectory(Path.Combine(directory.Path, "nested", "deeper"));
        await using var relay = PassageProcess.Start(
            ["relay", "--connect-plain", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--allow-private"],
            new Dictionary<string, string?>
            {
                ["Kestrel__Endpoints__variable__Url"] = $"http://127.0.0.1:{variablePort}",
                ["ASPNETCORE_URLS"] = $"http://127.0.0.1:{urlsPort}",
            },
            workingDirectory: directory.Path);
        await relay.WaitForListeningPortAsync();
        var adminPort = await relay.WaitForAdminPortAsync();

        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync(new Uri($"http://127.0.0.1:{adminPort}/healthz")));
        foreach (var port in new[] { filePort, variablePort, urlsPort })
        {
            using var probe = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            var refused = await Assert.ThrowsAsync<System.Net.Sockets.SocketException>(async () => await probe.ConnectAsync(System.Net.IPAddress.Loopback, port));
            Assert.Equal(System.Net.Sockets.SocketError.ConnectionRefused, refused.SocketErrorCode);
        }
        if (OperatingSystem.IsLinux())
        {
            // No file watching at all (it was one inotify instance per server, a watch per directory).
            var watchers = OpenDescriptors.Count(relay.Id, "anon_inode:inotify");
            Assert.Equal(0, watchers);
        }
    }

    [Fact]
    public async Task A_port_already_in_use_is_a_clear_startup_error()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var (exit, _, stderr) = await PassageProcess.RunAsync(["relay", "--passthrough", $"127.0.0.1:{port}", "--route", "*=:443"]);
        Assert.Equal(1, exit);
        Assert.Contains("Cannot start", stderr);
        Assert.Contains($"passthrough cannot listen on 127.0.0.1:{port}: ", stderr);
        Assert.Contains("address already in use", stderr, StringComparison.OrdinalIgnoreCase);
        // A front door that never listened has nothing to drain: no "stopping ... have 30s to finish" before the error.
        Assert.DoesNotContain("passthrough stopping", stderr);
        Assert.DoesNotContain("passthrough stopped", stderr);
    }

    [Fact]
    public async Task An_admin_port_already_in_use_is_one_line_naming_it_not_a_stack()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var (exit, _, stderr) = await PassageProcess.RunAsync(["relay", "--connect", "127.0.0.1:0", "--admin", $"127.0.0.1:{port}"]);
        Assert.Equal(1, exit);
        Assert.Contains("Cannot start", stderr);
        Assert.Contains($"127.0.0.1:{port}", stderr);
        // The host's own report of the failure, with the exception's whole stack, is left to debug logging.
        Assert.DoesNotContain("Hosting failed to start", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task An_admin_address_not_on_this_machine_is_one_line_naming_it()
    {
        // 192.0.2.0/24 is for documentation (RFC 5737): bind(2) fails with EADDRNOTAVAIL, whose words alone named nothing.
        var (exit, _, stderr) = await PassageProcess.RunAsync(["relay", "--connect", "127.0.0.1:0", "--admin", "192.0.2.7:9090"]);
        Assert.Equal(1, exit);
        Assert.Contains("Cannot start: admin cannot listen on 192.0.2.7:9090: ", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public async Task A_client_port_already_in_use_is_a_clear_startup_error()
    {
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
        var relay = $"{Passage.Identity.NodeIdentity.Create().NodeId}@127.0.0.1:{Loopback.ClosedPort()}";
        var (exit, _, stderr) = await PassageProcess.RunAsync(["client", "--relay", relay, "--socks", $"127.0.0.1:{port}", "--http", "127.0.0.1:0"]);
        Assert.Equal(1, exit);
        Assert.Contains($"Cannot start: socks cannot listen on 127.0.0.1:{port}: ", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
    }

    [Fact]
    public async Task Config_check_tells_tunnel_and_client_files_apart_and_validates_them()
    {
        using var directory = new TemporaryDirectory();
        var tunnel = directory.Write("tunnel.json", """{ "general": { "mode": "sideways" } }""");
        var (tunnelExit, _, tunnelErrors) = await PassageProcess.RunAsync(["config", "check", tunnel]);
        Assert.Equal(1, tunnelExit);
        Assert.Contains("general.mode", tunnelErrors);

        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var client = directory.Write("client.json", $$"""{ "client": { "relays": ["{{id}}@127.0.0.1:8443"], "socks": ["127.0.0.1:0"] } }""");
        var (clientExit, clientOut, clientErrors) = await PassageProcess.RunAsync(["config", "check", client]);
        Assert.True(clientExit == 0, clientErrors);
        Assert.Contains("\"127.0.0.1:0\"", clientOut);

        var badClient = directory.Write("bad-client.json", """{ "client": { "relays": ["nope@127.0.0.1:1"], "sox": [] } }""");
        var (badExit, _, badErrors) = await PassageProcess.RunAsync(["config", "check", badClient]);
        Assert.Equal(1, badExit);
        Assert.Contains("client.relays[0]", badErrors);
    }

    /// <summary>
    /// A file saved as UTF-16 is read as its byte order mark says, by the check that tells its role as by the settings
    /// readers: it was taken for a relay's (its sections unread), and a client's was refused for its unknown keys.
    /// </summary>
    [Fact]
    public async Task Config_check_tells_a_client_file_saved_as_utf16_apart()
    {
        using var directory = new TemporaryDirectory();
        var id = Passage.Identity.NodeIdentity.Create().NodeId;
        var client = Path.Combine(directory.Path, "client.json");
        File.WriteAllText(client, $$"""{ "client": { "relays": ["{{id}}@127.0.0.1:8443"], "socks": ["127.0.0.1:0"] } }""", System.Text.Encoding.Unicode);

        var (exit, output, errors) = await PassageProcess.RunAsync(["config", "check", client]);

        Assert.True(exit == 0, errors);
        Assert.Contains("\"127.0.0.1:0\"", output);
    }

    /// <summary>
    /// A settings file named by an empty string (<c>--config "$FILE"</c> with the variable unset) ended every command in a
    /// stack trace: each says so in one line and starts nothing.
    /// </summary>
    [Theory]
    [InlineData("relay", "--config")]
    [InlineData("client", "--config")]
    [InlineData("tunnel", "--config")]
    [InlineData("config", "check")]
    public async Task An_empty_settings_file_name_is_an_error_not_a_stack(string command, string option)
    {
        var (exit, stdout, stderr) = await PassageProcess.RunAsync([command, option, ""]);

        Assert.Equal(1, exit);
        Assert.Contains($"  {CliSettings.EmptyFileName}", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("listening", stdout + stderr, StringComparison.Ordinal);
    }

    /// <summary>
    /// SIGTERM while the client first probes its relays (one that takes the connection and never answers TLS) ended it
    /// with exit code 1 and no word, as a failure would: it is the stop asked for, exit code 0.
    /// </summary>
    [Fact]
    public async Task Client_stopped_while_probing_its_relays_exits_0()
    {
        using var silent = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        silent.Start();
        var relay = $"{Passage.Identity.NodeIdentity.Create().NodeId}@127.0.0.1:{((System.Net.IPEndPoint)silent.LocalEndpoint).Port}";
        await using var client = PassageProcess.Start(["client", "--relay", relay, "--socks", "127.0.0.1:0", "--http", "off", "--connect-timeout", "10m"]);
        using var probe = await silent.AcceptTcpClientAsync().WaitAsync(Timeouts.Default);

        client.Signal(PassageProcess.SigTerm);
        await client.WaitForExitAsync(Timeouts.Default);

        Assert.True(client.ExitCode == 0, client.Output);
        Assert.DoesNotContain("listening", client.StandardError);
    }

    /// <summary>
    /// A user flag written without its colon (<c>--socks-user alice=s3cret</c>) was echoed whole in the error, password
    /// and all: the error says which flag, not what it held.
    /// </summary>
    [Fact]
    public async Task A_user_flag_without_its_colon_is_refused_without_echoing_the_password()
    {
        var relay = $"{Passage.Identity.NodeIdentity.Create().NodeId}@127.0.0.1:{Loopback.ClosedPort()}";
        var (exit, stdout, stderr) = await PassageProcess.RunAsync(
            ["client", "--relay", relay, "--socks", "127.0.0.1:0", "--socks-user", "bob:fine", "--socks-user", "alice=s3cret", "--http-user", "s3cret2"]);

        Assert.Equal(1, exit);
        Assert.Contains("--socks-user (number 2 of those given): expected USER:PASSWORD", stderr);
        Assert.Contains("--http-user (number 1 of those given): expected USER:PASSWORD", stderr);
        Assert.DoesNotContain("s3cret", stdout + stderr);
    }

    [Fact]
    public async Task Client_without_a_relay_explains_what_it_needs()
    {
        var (exit, _, stderr) = await PassageProcess.RunAsync(["client"]);
        Assert.Equal(1, exit);
        Assert.Contains("client.relays: no relay: give one or more as --relay ID@HOST:PORT", stderr);
    }

    internal static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "Passage.slnx")))
        {
            directory = directory.Parent;
        }
        return directory?.FullName ?? throw new InvalidOperationException("Passage.slnx not found above the test folder");
    }
}
