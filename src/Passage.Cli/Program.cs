using System.CommandLine;
using System.CommandLine.Invocation;
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
        var parse = root.Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            return ReportUsageErrors(parse, invocation.Error);
        }
        return await parse.InvokeAsync(invocation).ConfigureAwait(false);
    }

    /// <summary>
    /// A command line that does not parse (an unknown flag, a flag without its value or given twice): each error on standard
    /// error, with what the flag it names wants, then where the usage is; exit 1, as for every error before a start.
    /// </summary>
    /// <remarks>
    /// The parser's own answer printed the whole help to standard output, then the error: the error came after forty
    /// lines, and a script's output (<c>passage id KEY &gt; id.txt</c>) got the help.
    /// </remarks>
    internal static int ReportUsageErrors(ParseResult parse, TextWriter error)
    {
        var names = new List<string>();
        for (var result = parse.CommandResult; result is not null; result = result.Parent as System.CommandLine.Parsing.CommandResult)
        {
            names.Insert(0, result.Command.Name);
        }
        var command = string.Join(' ', names);
        var options = parse.CommandResult.Command.Options.Select(o => o.Name).ToList();
        foreach (var problem in parse.Errors)
        {
            error.WriteLine($"{command}: {problem.Message}");
            foreach (var token in parse.UnmatchedTokens.Where(t => t.StartsWith("--", StringComparison.Ordinal) && problem.Message.Contains($"'{t}'", StringComparison.Ordinal)))
            {
                if (options.Where(o => EditDistance(o, token) <= 2).ToList() is { Count: > 0 } near)
                {
                    error.WriteLine($"  did you mean {string.Join(" or ", near)}?");
                }
            }
            if (problem.SymbolResult is System.CommandLine.Parsing.OptionResult { Option: { Description: { } description } option })
            {
                error.WriteLine($"  {option.Name}{(option.HelpName is { } value ? $" <{value}>" : "")}: {description}");
            }
        }
        error.WriteLine($"See '{command} --help'.");
        return 1;
    }

    /// <summary>The Levenshtein distance of <paramref name="a"/> and <paramref name="b"/>: a flag typed with a letter missing, extra or swapped is 1 or 2 from the one meant.</summary>
    private static int EditDistance(string a, string b)
    {
        var previous = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var current = new int[b.Length + 1];
            current[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                current[j] = Math.Min(Math.Min(current[j - 1], previous[j]) + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
            }
            previous = current;
        }
        return previous[b.Length];
    }
}
