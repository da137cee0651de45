using System.CommandLine;

namespace Passage.Cli.Commands;

internal static class RelayCommand
{
    public static Command Create()
    {
        var command = new Command("relay", "TODO");
        command.SetAction(_ => 1);
        return command;
    }
}
