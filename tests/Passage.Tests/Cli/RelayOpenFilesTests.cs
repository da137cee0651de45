using System.Net.Sockets;
using System.Text.RegularExpressions;
using Passage.Tests.Infrastructure;
using Passage.Tests.Relay.Connect;

namespace Passage.Tests.Cli;

/// <summary>The relay under a limit on open files, as a real process started with <c>ulimit -n</c>.</summary>
public sealed partial class RelayOpenFilesTests
{
    /// <summary>
    /// Under 1024 (soft and hard, a common default) one listener's caps are lowered to 352 connections and
    /// 352 tunnels. Without that, the relay took tunnels until the process ran out of descriptors (about 430)
    /// and aborted.
    /// </summary>
    [Fact]
    public async Task Under_a_low_limit_the_relay_lowers_its_caps_refuses_beyond_them_and_keeps_serving()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(
            ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels-per-client", "4096"), openFiles: (1024, 1024));
        var port = await relay.WaitForListeningPortAsync();
        Assert.Contains("using relay.maxConnections 352 and relay.maxTunnels 352", relay.StandardError);

        var (open, refused) = await OpenTunnelsAsync(port, echo.Port, 420);
        try
        {
            Assert.Equal(352, open.Count);
            Assert.Equal(68, refused);
            Assert.False(relay.HasExited, relay.Output);
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }

        // Once they close, there is room again.
        await UntilATunnelOpensAsync(port, echo.Port);
    }

    /// <summary>
    /// The budget reads the soft limit; the runtime raises it to the hard one as the process starts, so the hard
    /// limit is what counts (LimitNOFILE= in a unit sets both).
    /// </summary>
    [Fact]
    public async Task The_relay_runs_with_its_soft_limit_raised_to_the_hard_one_and_sizes_its_caps_to_that()
    {
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path), openFiles: (1024, 3000));
        await relay.WaitForListeningPortAsync();
        // (3000 − 256 − 187) / 2
        Assert.Contains("using relay.maxConnections 1278 and relay.maxTunnels 1278", relay.StandardError);
        var limits = await File.ReadAllTextAsync($"/proc/{relay.Id}/limits");
        var match = OpenFilesLine().Match(limits);
        Assert.True(match.Success, limits);
        Assert.Equal("3000", match.Groups["soft"].Value);
        Assert.Equal("3000", match.Groups["hard"].Value);
    }

    /// <summary>
    /// Asks for <paramref name="count"/> tunnels to the echo server one after another: those opened (held, the caller's)
    /// and how many were refused (reset, or answered other than 200).
    /// </summary>
    private static async Task<(List<Socket> Open, int Refused)> OpenTunnelsAsync(int relayPort, int echoPort, int count)
    {
        var open = new List<Socket>();
        var refused = 0;
        for (var i = 0; i < count; i++)
        {
            var (socket, head) = await TryTunnelAsync(relayPort, echoPort);
            if (head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
            {
                open.Add(socket!);
            }
            else
            {
                socket?.Dispose();
                refused++;
            }
        }
        return (open, refused);
    }

    /// <summary>Asks for a tunnel every 50 ms until one opens (it is closed again).</summary>
    private static async Task UntilATunnelOpensAsync(int relayPort, int echoPort)
    {
        using var cts = new CancellationTokenSource(Timeouts.Default);
        while (true)
        {
            var (socket, head) = await TryTunnelAsync(relayPort, echoPort);
            using (socket)
            {
                if (head.StartsWith("HTTP/1.1 200", StringComparison.Ordinal))
                {
                    return;
                }
            }
            await Task.Delay(50, cts.Token);
        }
    }

    /// <summary>A CONNECT to the echo server: the socket and the answer's head ("" when the relay refused the connection outright).</summary>
    private static async Task<(Socket? Socket, string Head)> TryTunnelAsync(int relayPort, int echoPort)
    {
        try
        {
            return await ConnectHarness.RequestTunnelAsync(relayPort, $"127.0.0.1:{echoPort}");
        }
        catch (SocketException)
        {
            // Refused at the connection limit: closed with a reset.
            return (null, "");
        }
    }

    [GeneratedRegex(@"Max open files\s+(?<soft>\d+)\s+(?<hard>\d+)")]
    private static partial Regex OpenFilesLine();

    /// <summary>
    /// Out of descriptors for real (here the limit is lowered under the running relay, past what its caps planned
    /// for): the runtime needs a descriptor to start a thread, and without one the process aborted. The relay now
    /// gives back spare descriptors at the first failed accept and refuses new connections until it can hold them
    /// again: it stays up, and serves again once connections close.
    /// </summary>
    [Fact]
    public async Task Out_of_descriptors_for_real_the_relay_refuses_instead_of_aborting_and_recovers()
    {
        await using var echo = new EchoServer();
        using var directory = new TemporaryDirectory();
        await using var relay = PassageProcess.Start(ConnectHarness.PlainRelayArguments(directory.Path, "--max-tunnels-per-client", "4096"));
        var port = await relay.WaitForListeningPortAsync();
        var lowered = new RLimit(320, 320);
        Assert.True(SetLimit(relay.Id, RLIMIT_NOFILE, lowered, 0) == 0, $"prlimit failed: errno {System.Runtime.InteropServices.Marshal.GetLastPInvokeError()}");

        // About 190 descriptors are the runtime's: some 60 tunnels fit, the rest are refused.
        var (open, refused) = await OpenTunnelsAsync(port, echo.Port, 150);
        try
        {
            Assert.False(relay.HasExited, relay.Output);
            Assert.InRange(open.Count, 1, 149);
            Assert.Equal(150 - open.Count, refused);
            await relay.WaitForLineAsync(l => l.Contains("accept failed (TooManyOpenSockets", StringComparison.Ordinal));
        }
        finally
        {
            open.ForEach(s => s.Dispose());
        }

        // Once they close, there is room again.
        await UntilATunnelOpensAsync(port, echo.Port);
        Assert.False(relay.HasExited, relay.Output);
    }

    private const int RLIMIT_NOFILE = 7;

    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private readonly record struct RLimit(ulong Current, ulong Maximum);

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "prlimit", SetLastError = true)]
    private static partial int SetLimit(int pid, int resource, in RLimit newLimit, nint oldLimit);
}
