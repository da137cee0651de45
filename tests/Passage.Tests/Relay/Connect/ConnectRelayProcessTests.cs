using System.Text.RegularExpressions;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Relay.Connect;

/// <summary>The CONNECT relay as a real <c>passage</c> process.</summary>
public sealed partial class ConnectRelayProcessTests
{
    [Fact]
    public async Task With_no_arguments_the_relay_serves_connect_on_loopback_and_prints_a_curl_command_that_works()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(["relay"], workingDirectory: directory.Path);
        var tryLine = await relay.WaitForLineAsync(l => l.StartsWith("try ", StringComparison.Ordinal));
        var nodeLine = await relay.WaitForLineAsync(l => l.StartsWith("node ID ", StringComparison.Ordinal));

        // The identity is kept under ./passage-data/, and `passage id` agrees with what was printed.
        var key = Path.Combine(directory.Path, "passage-data", "relay.pem");
        Assert.True(File.Exists(key));
        var (_, id, _) = await PassageProcess.RunAsync(["id", key]);
        Assert.Equal(nodeLine["node ID ".Length..].Trim(), id.Trim());

        await RunThePrintedCurlCommandAsync(tryLine, directory.Path);
        Assert.Contains("listening on 127.0.0.1:8443", relay.Output);
    }

    /// <summary>
    /// A relay told to listen on one address of its host puts that address in its new certificate, so the printed
    /// command, which verifies the relay by its certificate file, works there too (127.0.0.2: loopback, but not the
    /// 127.0.0.1 every certificate names).
    /// </summary>
    [Fact]
    public async Task The_printed_curl_command_works_on_the_address_the_relay_was_told_to_listen_on()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(["relay", "--connect", "127.0.0.2:0"], workingDirectory: directory.Path);
        var tryLine = await relay.WaitForLineAsync(l => l.StartsWith("try ", StringComparison.Ordinal));
        Assert.Contains("-x https://127.0.0.2:", tryLine, StringComparison.Ordinal);
        await RunThePrintedCurlCommandAsync(tryLine, directory.Path);
    }

    /// <summary>
    /// A relay on <c>[::]</c> prints its command for 127.0.0.1: the listener binds <c>[::]</c> dual-mode, so IPv4 clients
    /// reach it as well as IPv6 ones, and the command works as printed; so does the plain line's, for 127.0.0.1 too.
    /// </summary>
    [Fact]
    public async Task On_the_ipv6_unspecified_address_the_printed_curl_commands_work()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "[::]:0", "--connect-plain", "[::]:0", "--insecure-plain"], workingDirectory: directory.Path);
        var tryLine = await relay.WaitForLineAsync(l => l.StartsWith("try ", StringComparison.Ordinal));
        var plainLine = await relay.WaitForLineAsync(l => l.StartsWith("plain ", StringComparison.Ordinal));

        Assert.Contains("-x https://127.0.0.1:", tryLine, StringComparison.Ordinal);
        await RunThePrintedCurlCommandAsync(tryLine, directory.Path);
        Assert.Contains("-x http://127.0.0.1:", plainLine, StringComparison.Ordinal);
        var plain = Regex.Match(plainLine, @"curl -p -x (?<proxy>\S+) (?<url>\S+)$");
        Assert.True(plain.Success, plainLine);
        var (exit, _, error) = await Curl.RunAsync("-v", "-p", "-x", plain.Groups["proxy"].Value, plain.Groups["url"].Value);
        Assert.NotEqual(0, exit);
        Assert.Contains("HTTP/1.1 502", error);
    }

    /// <summary>
    /// A key whose certificate does not name the address (here one from <c>passage keygen</c> without <c>--name</c>)
    /// gets no curl command that would fail its name check, but a line saying why there is none.
    /// </summary>
    [Fact]
    public async Task A_key_whose_certificate_does_not_name_the_address_gets_a_note_instead_of_a_failing_command()
    {
        using var directory = new TemporaryDirectory();
        var key = Path.Combine(directory.Path, "relay.pem");
        var (keygen, _, keygenError) = await PassageProcess.RunAsync(["keygen", "--out", key]);
        Assert.True(keygen == 0, keygenError);
        await using var relay = PassageProcess.Start(["relay", "--connect", "127.0.0.1:0", "--key", key], workingDirectory: directory.Path);
        var note = await relay.WaitForLineAsync(l => l.StartsWith("note ", StringComparison.Ordinal));
        Assert.Contains("relay.crt does not name 127.0.0.1, so curl cannot verify the relay at https://127.0.0.1:", note, StringComparison.Ordinal);
        Assert.DoesNotContain("try ", relay.StandardOutput, StringComparison.Ordinal);
    }

    /// <summary>
    /// A key the relay may read but not write beside (a secret mounted read-only, a configuration directory under
    /// systemd's ProtectSystem=strict) stopped the relay at start: "relay.key: its certificate: Access to the path
    /// '.../relay.crt' is denied". It starts, says at warning level why the certificate is not there, and prints no curl
    /// command that would need it.
    /// </summary>
    [UnprivilegedFact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")] // Skipped elsewhere (UnprivilegedFact).
    public async Task A_key_in_a_directory_the_relay_cannot_write_to_does_not_stop_it()
    {
        using var directory = new TemporaryDirectory();
        var key = Path.Combine(directory.Path, "relay.pem");
        var (keygen, _, keygenError) = await PassageProcess.RunAsync(["keygen", "--out", key, "--name", "127.0.0.1"]);
        Assert.True(keygen == 0, keygenError);
        // The user nobody may read the key, and the directory (root's, 0755) but not write in it.
        File.SetUnixFileMode(directory.Path, (UnixFileMode)Convert.ToInt32("755", 8));
        using (var chown = System.Diagnostics.Process.Start("chown", ["65534", key]))
        {
            await chown.WaitForExitAsync().WaitAsync(Timeouts.Default);
            Assert.Equal(0, chown.ExitCode);
        }

        await using var relay = PassageProcess.Start(["relay", "--connect", "127.0.0.1:0", "--key", key], workingDirectory: directory.Path, unprivileged: true);
        var port = await relay.WaitForListeningPortAsync();
        var cert = await relay.WaitForLineAsync(l => l.StartsWith("cert ", StringComparison.Ordinal));
        Assert.Equal("cert     relay.crt cannot be written (Permission denied), so curl cannot verify the relay; clients that pin the node ID can", cert);
        Assert.Contains("warn: Passage.Relay.Connect.ConnectRelay[125] The relay's certificate cannot be written to ", relay.StandardError, StringComparison.Ordinal);
        Assert.DoesNotContain("try ", relay.StandardOutput, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(directory.Path, "relay.crt")));

        // It serves: TLS with its key, then CONNECT (refused here: a loopback destination).
        var (exit, _, error) = await Curl.RunAsync("-v", "-p", "-x", $"https://127.0.0.1:{port}", "--proxy-insecure", "https://127.0.0.1:1/");
        Assert.NotEqual(0, exit);
        Assert.Contains("HTTP/1.1 403", error);
    }

    /// <summary>
    /// Runs a printed <c>try</c> command. The machine has no route to example.org, so the relay answers the CONNECT
    /// with 502 dns_error: proof that TLS to the relay, its certificate's name, the pin and CONNECT worked.
    /// </summary>
    /// <summary>
    /// A relay that asks for a token printed commands that got 407 as printed. They now send the token from the shell's
    /// TOKEN, and a line says where to take it from; the banner itself holds no token (it goes to logs too).
    /// </summary>
    [Fact]
    public async Task With_a_token_file_the_printed_commands_send_the_token_from_the_shell()
    {
        using var directory = new TemporaryDirectory();
        var tokens = directory.Write("tokens", "# who may use this relay\nsecret-one\n");
        await using var relay = PassageProcess.Start(
            ["relay", "--connect", "127.0.0.1:0", "--connect-plain", "127.0.0.1:0", "--token-file", tokens], workingDirectory: directory.Path);
        var lines = new[] { await relay.WaitForLineAsync(l => l.StartsWith("try ", StringComparison.Ordinal)), await relay.WaitForLineAsync(l => l.StartsWith("plain ", StringComparison.Ordinal)) };
        Assert.Contains($"token    the relay asks for a token: set TOKEN to one of the lines of {tokens} first", await relay.WaitForLineAsync(l => l.StartsWith("token ", StringComparison.Ordinal)));
        Assert.DoesNotContain("secret-one", relay.StandardOutput, StringComparison.Ordinal);
        foreach (var line in lines)
        {
            var command = line[line.IndexOf("curl ", StringComparison.Ordinal)..].Replace("curl ", "curl -q -v --max-time 20 ", StringComparison.Ordinal);
            var start = new System.Diagnostics.ProcessStartInfo("bash", ["-c", command])
            {
                WorkingDirectory = directory.Path,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            start.Environment["TOKEN"] = "secret-one";
            using var curl = System.Diagnostics.Process.Start(start)!;
            var output = curl.StandardOutput.ReadToEndAsync();
            var error = await curl.StandardError.ReadToEndAsync().WaitAsync(Timeouts.Default);
            await curl.WaitForExitAsync().WaitAsync(Timeouts.Default);
            await output;
            // Past the token: the relay looked the destination up (no DNS here), where without it it answered 407.
            Assert.Contains("HTTP/1.1 502", error);
            Assert.Contains("error=dns_error", error);
        }
    }

    private static async Task RunThePrintedCurlCommandAsync(string tryLine, string workingDirectory)
    {
        var match = CurlCommand().Match(tryLine);
        Assert.True(match.Success, tryLine);
        var (exit, _, error) = await Curl.RunAsync("-v", "-p", "-x", match.Groups["proxy"].Value,
            "--proxy-cacert", Path.Combine(workingDirectory, match.Groups["cert"].Value),
            "--proxy-pinnedpubkey", match.Groups["pin"].Value, match.Groups["url"].Value);
        Assert.NotEqual(0, exit);
        Assert.Contains("HTTP/1.1 502", error);
        Assert.Contains("error=dns_error", error);
    }

    /// <summary>
    /// The token file is re-read as it changes; the relay says what each re-read found (never a token), so that an
    /// operator whose relay starts refusing everyone 407 can see why.
    /// </summary>
    [Fact]
    public async Task The_relay_logs_what_each_re_read_of_its_token_file_found()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        var tokens = Path.Combine(directory.Path, "tokens");
        await File.WriteAllTextAsync(tokens, "first-token\n");
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--token-file", tokens));
        var port = await ConnectHarness.PlainPortAsync(relay);

        async Task<string> StatusWith(string token)
        {
            using var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
            var target = $"127.0.0.1:{echo.Port}";
            await Loopback.SendAllAsync(socket, System.Text.Encoding.ASCII.GetBytes(
                $"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\nProxy-Authorization: Bearer {token}\r\n\r\n"));
            return (await ConnectHarness.ReadHeadAsync(socket)).Split(' ')[1];
        }
        // The file is re-read at most once a second, on a request: ask until the condition holds.
        async Task Until(Func<Task<bool>> condition)
        {
            using var giveUp = new CancellationTokenSource(Timeouts.Default);
            while (!await condition())
            {
                await Task.Delay(100, giveUp.Token);
            }
        }
        Task UntilStatus(string token, string status) => Until(async () => await StatusWith(token) == status);

        Assert.Equal("200", await StatusWith("first-token"));
        await File.WriteAllTextAsync(tokens, "# nobody for now\n");
        await UntilStatus("first-token", "407");
        await relay.WaitForLineAsync(l => l.Contains($"Token file {tokens} holds no token: every CONNECT is refused 407", StringComparison.Ordinal));

        await File.WriteAllTextAsync(tokens, "second-token\n");
        await UntilStatus("second-token", "200");
        await relay.WaitForLineAsync(l => l.Contains($"Token file {tokens} re-read: 1 tokens in force", StringComparison.Ordinal));

        // A file gone keeps the last good set in force, and says so once.
        File.Delete(tokens);
        await Until(async () =>
        {
            Assert.Equal("200", await StatusWith("second-token"));
            return relay.StandardError.Contains($"Token file {tokens} cannot be used (", StringComparison.Ordinal);
        });
        Assert.Contains("the 1 tokens read last stay in force", relay.StandardError);
        Assert.Equal("200", await StatusWith("second-token"));
        Assert.DoesNotContain("second-token", relay.StandardError + relay.StandardOutput);
    }

    [Fact]
    public async Task At_information_level_no_log_line_pairs_a_client_with_a_destination()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--map", "origin.test=127.0.0.1"));
        var port = await relay.WaitForListeningPortAsync();
        for (var i = 0; i < 10; i++)
        {
            var (socket, head) = await ConnectHarness.RequestTunnelAsync(port, i % 3 == 0 ? "nowhere.invalid:1" : $"origin.test:{echo.Port}");
            using var _ = socket;
            Assert.StartsWith("HTTP/1.1 ", head);
        }
        relay.Signal(PassageProcess.SigTerm);
        await relay.WaitForExitAsync(Timeouts.Default);
        foreach (var line in relay.StandardError.Split('\n'))
        {
            var namesDestination = line.Contains("origin.test", StringComparison.Ordinal) || line.Contains("nowhere.invalid", StringComparison.Ordinal);
            var namesClient = Regex.IsMatch(line, @"127\.0\.0\.1:\d{4,5}") && !line.Contains("listening on", StringComparison.Ordinal);
            Assert.False(namesDestination && namesClient, line);
        }
    }

    /// <summary>
    /// The process runs socket work on its readiness threads, and a stream that never has to wait gives up its
    /// turn there every megabyte: the stream must go on after each turn (whole and in order, both ways), and a
    /// tunnel opened meanwhile must be served. Plain CONNECT (spliced) and CONNECT over TLS (copied).
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_stream_of_many_turns_arrives_whole_while_another_tunnel_is_served(bool tls)
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start([
            "relay", tls ? "--connect" : "--connect-plain", "127.0.0.1:0", "--allow", "*:*", "--allow-private",
            "--key", Path.Combine(directory.Path, "relay.pem"),
        ]);
        var port = await relay.WaitForListeningPortAsync();

        await using var bulk = await OpenTunnelAsync(port, echo.Port, tls);
        var data = new byte[24 * 1024 * 1024];
        new Random(6).NextBytes(data);
        var send = Task.Run(async () =>
        {
            for (var offset = 0; offset < data.Length; offset += 256 * 1024)
            {
                await bulk.WriteAsync(data.AsMemory(offset, 256 * 1024));
            }
        });
        var back = new byte[data.Length];
        var receive = Task.Run(async () =>
        {
            var filled = 0;
            while (filled < back.Length)
            {
                var n = await bulk.ReadAsync(back.AsMemory(filled));
                Assert.NotEqual(0, n);
                filled += n;
            }
        });

        // Another tunnel through the same process while the stream flows.
        await using (var other = await OpenTunnelAsync(port, echo.Port, tls))
        {
            await other.WriteAsync("ping"u8.ToArray());
            var pong = new byte[4];
            await other.ReadExactlyAsync(pong).AsTask().WaitAsync(Timeouts.Default);
            Assert.Equal("ping"u8.ToArray(), pong);
        }

        await Task.WhenAll(send, receive).WaitAsync(Timeouts.Default);
        Assert.True(data.AsSpan().SequenceEqual(back), "the echoed stream differs from what was sent");
    }

    /// <summary>A CONNECT tunnel to 127.0.0.1:<paramref name="echoPort"/> through the relay on <paramref name="port"/>, over TLS or not.</summary>
    private static async Task<Stream> OpenTunnelAsync(int port, int echoPort, bool tls)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        await socket.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, port));
        Stream stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        if (tls)
        {
            stream = await ConnectHarness.TlsToRelayAsync(stream);
        }
        await ConnectHarness.ConnectThroughAsync(stream, $"127.0.0.1:{echoPort}");
        return stream;
    }

    [GeneratedRegex(@"curl -p -x (?<proxy>\S+) --proxy-cacert (?<cert>\S+) --proxy-pinnedpubkey '(?<pin>[^']+)' (?<url>\S+)")]
    private static partial Regex CurlCommand();
}
