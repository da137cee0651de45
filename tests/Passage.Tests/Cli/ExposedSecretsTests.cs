using System.Text.Json;
using Microsoft.Extensions.Logging;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Cli;

/// <summary>
/// Key and token files others may read were loaded without a word (ssh refuses such a key): a start warns once for each,
/// naming its setting, the file, its mode and the fix, and <c>config check</c> warns too; neither refuses the file.
/// </summary>
public sealed class ExposedSecretsTests
{
    [Fact]
    public async Task A_relay_warns_once_for_each_key_or_token_file_others_may_read_and_starts()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var key = SavedKey(directory, "relay.pem", Mode0644);
        var tokens = directory.Write("tokens", "token-one\n");
        File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        var config = directory.Write("relay.json", $$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": {{JsonSerializer.Serialize(key)}}, "tokenFile": {{JsonSerializer.Serialize(tokens)}} } }""");
        var keyWarning = $"relay.key: '{key}' is readable by anyone on this machine (mode 0644); chmod 600 '{key}' keeps it its owner's";
        var tokenWarning = $"relay.tokenFile: '{tokens}' is readable by its group (mode 0640); chmod 600 '{tokens}' keeps it its owner's";

        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        await using var relay = PassageProcess.Start(["relay", "--config", config]);
        await relay.WaitForListeningPortAsync();

        Assert.True(checkExit == 0, checkError);
        Assert.Contains($"warning: {keyWarning}", checkError);
        Assert.Contains($"warning: {tokenWarning}", checkError);
        Assert.Equal(1, relay.CountLines(keyWarning));
        Assert.Equal(1, relay.CountLines(tokenWarning));
        Assert.Contains("warn: Passage.Relay[208] relay.key:", relay.StandardError);
    }

    [Fact]
    public async Task Files_only_their_owner_may_read_get_no_warning()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var key = SavedKey(directory, "relay.pem", UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var tokens = directory.Write("tokens", "token-one\n");
        File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var config = directory.Write("relay.json", $$"""{ "relay": { "connect": ["127.0.0.1:0"], "key": {{JsonSerializer.Serialize(key)}}, "tokenFile": {{JsonSerializer.Serialize(tokens)}} } }""");

        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);

        Assert.True(checkExit == 0, checkError);
        Assert.DoesNotContain("readable by", checkError);
        Assert.DoesNotContain("writable by", checkError);
    }

    /// <summary>
    /// A client's token and its local users' passwords are secrets too: given as flags they are on a command line every
    /// user of the machine can read, and in a settings file others may read, they are as exposed as a key file would
    /// be. Both are warned of, at start and by <c>config check</c>; the environment, its user's alone, is not.
    /// </summary>
    [Fact]
    public async Task A_clients_token_and_passwords_are_warned_of_on_the_command_line_and_in_a_file_others_may_read()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var relay = $"{NodeIdentity.Create().NodeId}@127.0.0.1:{Loopback.ClosedPort()}";
        var config = directory.Write("client.json", $$"""{ "client": { "relays": ["{{relay}}"], "socks": ["127.0.0.1:0"], "token": "tok-en", "httpUsers": { "alice": "s3cret" } } }""");
        File.SetUnixFileMode(config, Mode0644);
        using var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;

        var (checkExit, _, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        // Started to fail at once (its port is taken), after its warnings.
        var (exit, _, stderr) = await PassageProcess.RunAsync(
            ["client", "--relay", relay, "--socks", $"127.0.0.1:{port}", "--http", "off", "--token", "tok-en-2", "--socks-user", "bob:hunter2"],
            environment: new Dictionary<string, string?> { ["PASSAGE__CLIENT__HTTPUSERS__CAROL"] = "pa55" });

        Assert.True(checkExit == 0, checkError);
        var inFile = $"in a settings file others may read: '{config}' is readable by anyone on this machine (mode 0644); chmod 600 '{config}' keeps it its owner's";
        Assert.Contains($"warning: client.token: {inFile}", checkError);
        Assert.Contains($"warning: client.httpUsers: {inFile}", checkError);
        Assert.Equal(1, exit);
        Assert.Contains("client.token: given on the command line, which every user of this machine can read (ps); set PASSAGE__CLIENT__TOKEN or put it in a settings file only its owner may read", stderr);
        Assert.Contains("client.socksUsers: given on the command line, which every user of this machine can read (ps); set PASSAGE__CLIENT__SOCKSUSERS__USER or put it", stderr);
        Assert.DoesNotContain("client.httpUsers", stderr);
        Assert.DoesNotContain("hunter2", stderr);

        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var (_, _, privateError) = await PassageProcess.RunAsync(["config", "check", config]);
        Assert.DoesNotContain("warning:", privateError);
    }

    /// <summary>A client's key (<c>client.key</c>) others may read: warned of by <c>config check</c> and at start, as a relay's.</summary>
    [Fact]
    public async Task A_client_key_others_may_read_is_warned_of_by_config_check_and_at_start()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var key = SavedKey(directory, "client.pem", Mode0644);
        var relay = $"{NodeIdentity.Create().NodeId}@127.0.0.1:{Loopback.ClosedPort()}";
        var config = directory.Write("client.json", $$"""{ "client": { "relays": ["{{relay}}"], "socks": ["127.0.0.1:0"], "http": ["off"], "key": {{JsonSerializer.Serialize(key)}} } }""");
        File.SetUnixFileMode(config, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var warning = $"client.key: '{key}' is readable by anyone on this machine (mode 0644); chmod 600 '{key}' keeps it its owner's";

        var (checkExit, checkOutput, checkError) = await PassageProcess.RunAsync(["config", "check", config]);
        await using var client = PassageProcess.Start(["client", "--config", config]);
        await client.WaitForPortAfterAsync("socks listening on 127.0.0.1:");

        Assert.True(checkExit == 0, checkError);
        Assert.Contains($"warning: {warning}", checkError);
        Assert.Contains($"\"key\": {JsonSerializer.Serialize(key)}", checkOutput);
        Assert.Equal(1, client.CountLines(warning));
    }

    /// <summary>
    /// Whoever may write a token file may add a token of their own, and whoever may write a key may put another in its
    /// place: a secret others may write is as exposed as one they may read, and the fix named takes that away too.
    /// </summary>
    [Fact]
    public void A_secret_others_may_write_is_too_open_and_the_fix_takes_the_write_away()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var file = directory.Write("tokens", "token-one\n");
        const uint Someone = 4_000_000;
        string? Mode(UnixFileMode mode, uint? user = null, bool inGroup = false)
        {
            File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | mode);
            return user is { } other ? SecretFile.Exposure(file, other, _ => inGroup) : SecretFile.Exposure(file);
        }

        Assert.Equal($"'{file}' is writable by anyone on this machine (mode 0602); chmod 600 '{file}' keeps it its owner's", Mode(UnixFileMode.OtherWrite));
        Assert.Equal($"'{file}' is writable by its group (mode 0620); chmod 600 '{file}' keeps it its owner's", Mode(UnixFileMode.GroupWrite));
        Assert.Equal(
            $"'{file}' is readable and writable by anyone on this machine (mode 0666); chmod 600 '{file}' keeps it its owner's",
            Mode(UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite));
        Assert.Equal(
            $"'{file}' is readable by its group and writable by anyone on this machine (mode 0642); chmod 600 '{file}' keeps it its owner's",
            Mode(UnixFileMode.GroupRead | UnixFileMode.OtherWrite));
        // Another user's file: its group is how a service is given it, so only what others may do is judged, and only
        // that is taken away.
        Assert.Null(Mode(UnixFileMode.GroupRead | UnixFileMode.GroupWrite, Someone, inGroup: true));
        Assert.Equal($"'{file}' is writable by anyone on this machine (mode 0662); chmod o-w '{file}' keeps it from others", Mode(UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite, Someone, inGroup: true));
        Assert.Equal(
            $"'{file}' is readable and writable by anyone on this machine (mode 0606); this process reads it as anyone may, so chmod o-rw alone would lock it out: chgrp '{file}' to a group of its user's, then chmod o-rw",
            Mode(UnixFileMode.OtherRead | UnixFileMode.OtherWrite, Someone));
        Assert.Null(Mode(UnixFileMode.None));
    }

    /// <summary>
    /// A token file is re-read as it changes, a change of mode too: one made readable by anyone while the relay runs is
    /// warned of when it is re-read, as at start, and once, not at every later re-read.
    /// </summary>
    [Fact]
    public async Task A_token_file_opened_to_others_while_the_relay_runs_is_warned_of_at_its_re_read()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var tokens = directory.Write("tokens", "tok-en\n");
        File.SetUnixFileMode(tokens, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var log = new RecordingLogger();
        using var loggerFactory = log.Factory();
        await using var echo = new EchoServer();
        await using var relay = await Relay.Connect.ConnectHarness.StartAsync(o => o with { TokenFile = tokens }, loggerFactory: loggerFactory);
        using var client = relay.CreateHttp2Client();
        async Task ConnectAsync()
        {
            using var request = Relay.Connect.ConnectHarness.ExtendedConnect("origin.test", echo.Port);
            request.Headers.ProxyAuthorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", "tok-en");
            using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        }
        // The file is looked at on use, at most once a second.
        async Task ConnectUntilAsync(Func<bool> seen)
        {
            using var timeout = new CancellationTokenSource(Timeouts.Default);
            while (!seen())
            {
                await ConnectAsync();
                await Task.Delay(100, timeout.Token);
            }
        }
        await ConnectAsync();
        Assert.Empty(log.Named("SecretFileExposed"));

        File.SetUnixFileMode(tokens, Mode0644);
        await ConnectUntilAsync(() => log.Named("SecretFileExposed").Count > 0);
        File.AppendAllText(tokens, "tok-en-two\n");
        await ConnectUntilAsync(() => log.Named("TokenFileReloaded").Count > 1);

        var warning = Assert.Single(log.Named("SecretFileExposed"));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Equal($"relay.tokenFile: '{tokens}' is readable by anyone on this machine (mode 0644); chmod 600 '{tokens}' keeps it its owner's", warning.Message);
    }

    [Fact]
    public async Task A_tunnel_key_others_may_read_is_a_warning_from_config_check_not_an_error()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var key = SavedKey(directory, "tunnel.pem", Mode0644);
        var config = directory.Write("tunnel.json", $$"""
            { "general": { "mode": "server", "peer": "{{NodeIdentity.Create().NodeId}}", "bindAddress": "127.0.0.1:0", "httpConnectAddress": "127.0.0.1:1" },
              "tls": { "key": {{JsonSerializer.Serialize(key)}} } }
            """);

        var (exit, stdout, stderr) = await PassageProcess.RunAsync(["config", "check", config]);

        Assert.True(exit == 0, stderr);
        Assert.Contains("\"mode\": \"server\"", stdout);
        Assert.Contains($"warning: tls.key: '{key}' is readable by anyone on this machine (mode 0644); chmod 600 '{key}' keeps it its owner's", stderr);
    }

    /// <summary>
    /// A secret root owns and lets the service's user read through its group (the systemd unit's advice for a token file:
    /// group passage, mode 0640) is how a service is given one: no warning. Readable by anyone, it is, with a fix that
    /// does not lock the service out.
    /// </summary>
    [RootFact("giving a file to another user")]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Another_users_file_read_through_its_group_is_not_too_open_but_one_anyone_may_read_is()
    {
        using var directory = new TemporaryDirectory();
        var file = directory.Write("tokens", "token-one\n");
        File.SetUnixFileMode(file, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
        Assert.NotNull(SecretFile.Exposure(file));
        Chown(file, 65534, 0);

        Assert.Null(SecretFile.Exposure(file));
        File.SetUnixFileMode(file, Mode0644);
        Assert.Equal($"'{file}' is readable by anyone on this machine (mode 0644); chmod o-r '{file}' keeps it from others", SecretFile.Exposure(file));
    }

    /// <summary>
    /// Another user's file that this process reads only as anyone may (a secret mounted 0644 for a service outside its
    /// group): the fix named is not chmod o-r alone, which would lock the process out at its next start.
    /// </summary>
    [Fact]
    public void The_fix_for_another_users_file_read_as_anyone_may_does_not_lock_the_reader_out()
    {
        if (OperatingSystem.IsWindows())
        {
            // No Unix file modes.
            return;
        }
        using var directory = new TemporaryDirectory();
        var file = directory.Write("tokens", "token-one\n");
        File.SetUnixFileMode(file, Mode0644);
        const uint Someone = 4_000_000;

        Assert.Equal(
            $"'{file}' is readable by anyone on this machine (mode 0644); this process reads it as anyone may, so chmod o-r alone would lock it out: chgrp '{file}' to a group of its user's, then chmod o-r",
            SecretFile.Exposure(file, Someone, _ => false));
        Assert.Equal($"'{file}' is readable by anyone on this machine (mode 0644); chmod o-r '{file}' keeps it from others", SecretFile.Exposure(file, Someone, _ => true));
    }

    private const UnixFileMode Mode0644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    /// <summary>A new identity saved as <paramref name="name"/> in <paramref name="directory"/>, then given <paramref name="mode"/>.</summary>
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    private static string SavedKey(TemporaryDirectory directory, string name, UnixFileMode mode)
    {
        var key = Path.Combine(directory.Path, name);
        using (var identity = NodeIdentity.Create())
        {
            identity.Save(key, overwrite: false);
        }
        File.SetUnixFileMode(key, mode);
        return key;
    }

    private static void Chown(string path, int user, int group)
    {
        using var chown = System.Diagnostics.Process.Start("chown", [$"{user}:{group}", path]);
        chown.WaitForExit();
        Assert.Equal(0, chown.ExitCode);
    }
}
