using System.CommandLine;

namespace Passage.Cli.Commands;

internal static class ConfigCommand
{
    public static Command Create()
    {
        var command = new Command("config", "TODO");
        command.SetAction(_ => 1);
        return command;
    }
}
