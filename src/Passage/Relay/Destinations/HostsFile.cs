using System.Net;

namespace Passage.Relay.Destinations;

/// <summary>
/// The names of hosts(5) (<c>/etc/hosts</c>), asked before DNS as the C library asks them, and read again
/// when the file changes (<see cref="ReloadingFile{T}"/>).
/// </summary>
/// <remarks>
/// Each line is an address and its names (aliases included), <c>#</c> starting a comment. A name on several
/// lines gets every address of them, once each (the resolver orders them as it orders DNS answers). Names
/// compare ignoring case and a final dot. A line whose address does not parse is skipped.
/// </remarks>
internal sealed class HostsFile(string path)
{
    /// <summary>The file read by default.</summary>
    public const string DefaultPath = "/etc/hosts";

    private readonly ReloadingFile<Dictionary<string, IPAddress[]>> _file = new(path, text => Parse(text ?? ""));

    /// <summary>The addresses <paramref name="name"/> has in the file, or null when it has none (or there is no file).</summary>
    public IPAddress[]? Find(string name) =>
        _file.Current.TryGetValue(HostSyntax.ToMapKey(name), out IPAddress[]? addresses) ? addresses : null;

    /// <summary>Reads hosts(5) text.</summary>
    public static Dictionary<string, IPAddress[]> Parse(string text)
    {
        var lists = new Dictionary<string, List<IPAddress>>(StringComparer.OrdinalIgnoreCase);
        foreach (string rawLine in text.Split('\n'))
        {
            string[] words = rawLine.Split('#')[0].Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length < 2 || !IPAddress.TryParse(words[0], out IPAddress? address))
            {
                continue;
            }

            foreach (string name in words.Skip(1))
            {
                string key = HostSyntax.ToMapKey(name);
                if (!lists.TryGetValue(key, out List<IPAddress>? list))
                {
                    lists[key] = list = [];
                }

                if (!list.Contains(address))
                {
                    list.Add(address);
                }
            }
        }

        return lists.ToDictionary(p => p.Key, p => p.Value.ToArray(), StringComparer.OrdinalIgnoreCase);
    }
}
