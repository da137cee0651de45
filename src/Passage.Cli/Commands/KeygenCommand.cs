using System.CommandLine;

namespace Passage.Cli.Commands;

internal static class KeygenCommand
{
    public static Command Create()
    {
        var command = new Command("keygen", "TODO");
        command.SetAction(_ => 1);
        return command;
    }
}
