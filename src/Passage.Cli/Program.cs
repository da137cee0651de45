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
            KeygenCommand.Create(),
            IdCommand.Create(),
            ConfigCommand.Create(),
        };
        return await root.Parse(args).InvokeAsync().ConfigureAwait(false);
    }
}
