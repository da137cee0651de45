using System.CommandLine;
using Passage.Cli.Commands;

namespace Passage.Cli;

/// <summary>The <c>passage</c> command: one program for every role.</summary>
internal static class Program
{
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("Passage: a privacy-preserving relay. The relay knows who you are but not what you say; the destination knows what you say but not who you are.")
        {
            RelayCommand.Create(),
            TunnelCommand.Create(),
            KeygenCommand.Create(),
            IdCommand.Create(),
            ConfigCommand.Create(),
            ClientCommand.Create(),
        };
        // Passage handles SIGTERM and Ctrl-C itself (drain, then stop); the parser must not kill the
        // process a fixed time after the first signal.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null };
        return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
    }
}
