using System.CommandLine;
using Passage.Relay;

namespace Passage.Cli.Commands;

/// <summary><c>passage config check FILE</c>: prints the effective configuration, or every error in it.</summary>
internal static class ConfigCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "The JSON settings file to check" };
        var check = new Command("check", "Print the effective relay configuration (file, then PASSAGE__ environment variables, defaults filled in), or every error in it, each naming its key. Exit 0 when valid, 1 otherwise.")
        {
            file,
        };
        check.SetAction(async parse =>
        {
            var (relay, log, errors) = RelayCommand.Load(parse.GetValue(file), [], []);
            if (errors.Count > 0)
            {
                await RelayCommand.ReportErrors(errors).ConfigureAwait(false);
                return 1;
            }
            await Console.Out.WriteLineAsync(RelaySettings.ToJson(relay, log)).ConfigureAwait(false);
            return 0;
        });
        return new Command("config", "Work with settings files") { check };
    }
}
