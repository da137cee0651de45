using System.CommandLine;
using System.Security.Cryptography;
using Passage.Cli.Hosting;
using Passage.Configuration;
using Passage.Identity;

namespace Passage.Cli.Commands;

/// <summary><c>passage keygen --out FILE [--force] [--name NAME ...]</c>: creates a node identity.</summary>
internal static class KeygenCommand
{
    public static Command Create()
    {
        var output = new Option<string>("--out", "-o")
        {
            Description = "File to write: the private key and its self-signed certificate, as PEM, readable by its owner only (mode 0600).",
            HelpName = "FILE",
            Required = true,
        };
        var force = new Option<bool>("--force", "-f")
        {
            Description = "Replace FILE if it exists (a symbolic link is kept: the file it leads to is replaced). The old key is gone for good, and peers that pinned its node ID will refuse the new one.",
        };
        var names = new Option<string[]>("--name")
        {
            Description = "A DNS name or IP address to put in the certificate (repeatable). Peers pin the node ID, so names matter only to clients that check them.",
            HelpName = "NAME",
        };
        var command = new Command(
            "keygen",
            "Create a new node identity (an ECDSA P-256 key in a self-signed certificate) and print its node ID. "
            + "Peers address this node as ID@host:port and verify it by that ID.")
        {
            output,
            force,
            names,
        };
        command.SetAction(parseResult =>
        {
            var path = parseResult.GetValue(output)!;
            var overwrite = parseResult.GetValue(force);
            var stdout = parseResult.InvocationConfiguration.Output;
            var stderr = parseResult.InvocationConfiguration.Error;
            if (path.Length == 0)
            {
                stderr.WriteLine("passage keygen: the file name (--out) is empty");
                return 1;
            }
            // A directory is refused by the write, in words that do not offer --force. Anything else that is no regular file
            // (through links, as the write follows them) is refused here, with or without --force: the write renames the key
            // over what is there, and `--out /dev/stdout --force` run as root put a key file where the terminal's device was.
            if (InputFile.Stat(path) is { Kind: not (FileKind.Regular or FileKind.Missing or FileKind.Unknown or FileKind.Directory) } status)
            {
                stderr.WriteLine($"passage keygen: {InputFile.Refusal(path, status)}; a key is written to a regular file, and --force replaces only one. It was left untouched.");
                return 1;
            }
            if (!overwrite && File.Exists(path))
            {
                stderr.WriteLine($"passage keygen: '{path}' already exists; it was left untouched. Use --force to replace it with a new identity.");
                return 1;
            }
            try
            {
                using var identity = NodeIdentity.Create(parseResult.GetValue(names));
                identity.Save(path, overwrite);
                if (StandardOutput.TryWriteLine(stdout, identity.NodeId.ToString()) is { } failure)
                {
                    // The key is there: a retry without --force would be refused, and one with it would replace the key.
                    stderr.WriteLine($"passage keygen: '{path}' was written, but its node ID cannot be written to standard output ({failure}); `passage id {path}` prints it");
                    return 1;
                }
                return 0;
            }
            catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException or CryptographicException)
            {
                stderr.WriteLine($"passage keygen: {e.Message}");
                return 1;
            }
        });
        return command;
    }
}
