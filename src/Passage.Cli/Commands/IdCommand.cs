using System.CommandLine;
using System.Security.Cryptography;
using Passage.Cli.Hosting;
using Passage.Identity;

namespace Passage.Cli.Commands;

/// <summary><c>passage id FILE</c>: prints the node ID of an identity, key or certificate file.</summary>
internal static class IdCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file")
        {
            Description = "A PEM file with a certificate, a private key, a public key, or an identity written by 'passage keygen'.",
            HelpName = "FILE",
        };
        var command = new Command(
            "id",
            "Print the node ID of a key or certificate file: the base32 SHA-256 of its public key, "
            + "the ID that peers put in ID@host:port.")
        {
            file,
        };
        command.SetAction(parseResult =>
        {
            var path = parseResult.GetValue(file)!;
            if (path.Length == 0)
            {
                parseResult.InvocationConfiguration.Error.WriteLine("passage id: the file name is empty");
                return 1;
            }
            try
            {
                var nodeId = NodeIdentity.ReadNodeId(path);
                if (StandardOutput.TryWriteLine(parseResult.InvocationConfiguration.Output, nodeId.ToString()) is { } failure)
                {
                    parseResult.InvocationConfiguration.Error.WriteLine($"passage id: the node ID cannot be written to standard output: {failure}");
                    return 1;
                }
                return 0;
            }
            catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or CryptographicException)
            {
                parseResult.InvocationConfiguration.Error.WriteLine($"passage id: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
