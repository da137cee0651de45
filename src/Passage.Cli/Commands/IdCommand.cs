using System.CommandLine;

namespace Passage.Cli.Commands;

internal static class IdCommand
{
    public static Command Create()
    {
        var command = new Command("id", "TODO");
        command.SetAction(_ => 1);
        return command;
    }
}
