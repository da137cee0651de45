using System.Globalization;
using System.Net;

namespace Passage.Relay.Destinations;

/// <summary>
/// How the relay's own resolver asks DNS: the servers, the search list and the timing, read from
/// resolv.conf(5) the way the C library reads them, or given.
/// </summary>
/// <remarks>
/// Read from the file: <c>nameserver</c> (at most 3, as glibc), <c>search</c> and <c>domain</c> (the last of them
/// wins), and the options <c>ndots:N</c> (at most 15), <c>timeout:N</c> (seconds, at most 30), <c>attempts:N</c>
/// (at most 5) and <c>no-aaaa</c>. Other options (<c>rotate</c>, <c>edns0</c>, <c>single-request</c>, ...) are
/// ignored: they change how queries are sent, not what the answer is. Without a <c>nameserver</c> line the C
/// library asks 127.0.0.1, and so does this.
/// </remarks>
public sealed record ResolverConf
{
    /// <summary>The file read by default.</summary>
    public const string DefaultPath = "/etc/resolv.conf";

    /// <summary>The servers, asked in order.</summary>
    public IReadOnlyList<IPEndPoint> Servers { get; init; } = [new IPEndPoint(IPAddress.Loopback, 53)];

    /// <summary>Domains appended to a name with fewer than <see cref="Ndots"/> dots (first), or after the name failed as given.</summary>
    public IReadOnlyList<string> Search { get; init; } = [];

    /// <summary>Dots a name needs to be asked as given before the search list. Default 1.</summary>
    public int Ndots { get; init; } = 1;

    /// <summary>How long to wait for one server's reply. Default 5 s.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Rounds over the servers before giving up. Default 2.</summary>
    public int Attempts { get; init; } = 2;

    /// <summary>Ask for IPv4 addresses only (<c>options no-aaaa</c>).</summary>
    public bool NoAaaa { get; init; }

    /// <summary>Reads resolv.conf text; lines it does not know are skipped, as the C library skips them.</summary>
    public static ResolverConf Parse(string text)
    {
        var servers = new List<IPEndPoint>();
        IReadOnlyList<string> search = [];
        var conf = new ResolverConf();
        foreach (string rawLine in text.Split('\n'))
        {
            string line = rawLine.Trim();
            if (line.Length == 0 || line[0] is '#' or ';')
            {
                continue;
            }

            string[] words = line.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            switch (words[0])
            {
                case "nameserver" when words.Length > 1 && servers.Count < 3:
                    if (IPAddress.TryParse(words[1], out IPAddress? address))
                    {
                        servers.Add(new IPEndPoint(address, 53));
                    }

                    break;
                case "search":
                case "domain":
                    search = [.. words.Skip(1).Select(d => d.TrimEnd('.')).Where(d => d.Length > 0 && HostSyntax.Parse(d, out _) == HostKind.Name)];
                    break;
                case "options":
                    foreach (string option in words.Skip(1))
                    {
                        conf = WithOption(conf, option);
                    }

                    break;
            }
        }

        return conf with
        {
            Servers = servers.Count > 0 ? servers : conf.Servers,
            Search = search,
        };
    }

    /// <summary>Reads <paramref name="path"/>; a missing or unreadable file gives the defaults, as in the C library.</summary>
    public static ResolverConf Load(string path = DefaultPath)
    {
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            return new ResolverConf();
        }
    }

    /// <summary>
    /// Whether name lookups on this machine are <c>/etc/hosts</c> then DNS and nothing else, so that this
    /// resolver answers as getaddrinfo would: the <c>hosts:</c> line of nsswitch.conf(5) names the services
    /// <c>files</c> and <c>dns</c>, in that order, and no other (actions in brackets aside). A machine that asks
    /// mDNS, systemd-resolved, LDAP or anything else first keeps the system's resolver.
    /// </summary>
    public static bool NameServiceIsFilesThenDns(string? nsswitchText)
    {
        if (nsswitchText is null)
        {
            return false;
        }

        foreach (string rawLine in nsswitchText.Split('\n'))
        {
            string line = rawLine.Split('#')[0].Trim();
            if (!line.StartsWith("hosts:", StringComparison.Ordinal))
            {
                continue;
            }

            var services = new List<string>();
            bool inAction = false;
            foreach (string word in line["hosts:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.StartsWith('['))
                {
                    inAction = true;
                }

                if (!inAction)
                {
                    services.Add(word);
                }

                if (word.EndsWith(']'))
                {
                    inAction = false;
                }
            }

            return services is ["files", "dns"];
        }

        return false;
    }

    /// <summary>The names to ask for <paramref name="name"/>, in order (resolv.conf(5) on <c>ndots</c> and <c>search</c>).</summary>
    public IReadOnlyList<string> Candidates(string name)
    {
        if (name.EndsWith('.'))
        {
            return [name[..^1]];
        }

        int dots = name.AsSpan().Count('.');
        var names = new List<string>(Search.Count + 1);
        if (dots >= Ndots)
        {
            names.Add(name);
        }

        foreach (string domain in Search)
        {
            string candidate = name + "." + domain;
            if (candidate.Length <= 253)
            {
                names.Add(candidate);
            }
        }

        if (dots < Ndots)
        {
            names.Add(name);
        }

        return names;
    }

    private static ResolverConf WithOption(ResolverConf conf, string option)
    {
        int colon = option.IndexOf(':');
        string key = colon < 0 ? option : option[..colon];
        int? value = colon >= 0 && int.TryParse(option.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int parsed)
            ? parsed : null;
        return (key, value) switch
        {
            ("ndots", { } n) => conf with { Ndots = Math.Min(n, 15) },
            ("timeout", { } n) => conf with { Timeout = TimeSpan.FromSeconds(Math.Clamp(n, 1, 30)) },
            ("attempts", { } n) => conf with { Attempts = Math.Clamp(n, 1, 5) },
            ("no-aaaa", null) => conf with { NoAaaa = true },
            _ => conf,
        };
    }
}
