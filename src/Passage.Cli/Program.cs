using System.CommandLine;
using Passage.Cli.Commands;

namespace Passage.Cli;

/// <summary>The <c>passage</c> command: one program for every role.</summary>
internal static class Program
{
    /// <summary>The runtime's switch for running socket completions on its event threads (read once, at first socket use).</summary>
    internal const string InlineCompletions = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    public static async Task<int> Main(string[] args)
    {
        // A relay's work per socket event is short (move some bytes, parse a head), so it is done on the
        // runtime's socket event threads (one per core) instead of being handed to the thread pool: one
        // thread hop less per read. Measured on small keep-alive HTTPS requests through pass-through:
        // +40% requests per second, lower p50 and p99 (bench/RESULTS.md). Before any socket exists, and
        // only if the operator did not choose (set it to 0 to hand completions to the thread pool again).
        if (Environment.GetEnvironmentVariable(InlineCompletions) is null)
        {
            Environment.SetEnvironmentVariable(InlineCompletions, "1");
        }
        // Not a RootCommand: that takes its name from the assembly (Passage.Cli), and help would tell operators to
        // type "Passage.Cli relay". The options a RootCommand brings are added here instead.
        var root = new Command("passage", "Passage: a privacy-preserving relay. The relay knows who you are but not what you say; the destination knows what you say but not who you are.")
        {
            new System.CommandLine.Help.HelpOption(),
            new VersionOption(),
            RelayCommand.Create(),
            TunnelCommand.Create(),
            KeygenCommand.Create(),
            IdCommand.Create(),
            ConfigCommand.Create(),
            ClientCommand.Create(),
        };
        // Passage handles SIGTERM, SIGHUP and Ctrl-C itself (drain, then stop); the parser must not kill the
        // process a fixed time after the first signal.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
        return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
    }
}
