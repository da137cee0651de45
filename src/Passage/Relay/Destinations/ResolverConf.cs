using System.Globalization;
using System.Net;

namespace Passage.Relay.Destinations;

/// <summary>
/// How the relay's own resolver asks DNS: the servers, the search list and the timing, read from
/// resolv.conf(5) the way the C library reads them, or given.
/// </summary>
/// <remarks>
/// Read from the file: <c>nameserver</c> (at most 3, as glibc), <c>search</c> and <c>domain</c> (the last of them
/// wins; without either, the domain of this host's name, as <c>gethostname</c> gives it, after its first dot),
/// and the options <c>ndots:N</c> (at most 15), <c>timeout:N</c> (seconds, at most 30), <c>attempts:N</c> (at
/// most 5) and <c>no-aaaa</c>. As in the C library, a keyword counts only at the start of its line, and the
/// environment variables <c>LOCALDOMAIN</c> (a search list) and <c>RES_OPTIONS</c> (options) override the file.
/// Other options (<c>rotate</c>, <c>edns0</c>, <c>single-request</c>, ...) are ignored: they change how queries
/// are sent, not what the answer is. Without a <c>nameserver</c> line the C library asks 127.0.0.1, and so does
/// this. With <see cref="SourcePath"/> set, the resolver reads the file again when it changes, as glibc does.
/// </remarks>
public sealed record ResolverConf
{
    /// <summary>The file read by default.</summary>
    public const string DefaultPath = "/etc/resolv.conf";

    private readonly IReadOnlyList<IPEndPoint> _servers = [new IPEndPoint(IPAddress.Loopback, 53)];
    private readonly TimeSpan _timeout = TimeSpan.FromSeconds(5);
    private readonly int _attempts = 2;
    private readonly int _ndots = 1;

    /// <summary>The servers, asked in order; at least one.</summary>
    public IReadOnlyList<IPEndPoint> Servers
    {
        get => _servers;
        init => _servers = value is { Count: > 0 } ? value : throw new ArgumentException("At least one DNS server is needed.", nameof(value));
    }

    /// <summary>Domains appended to a name with fewer than <see cref="Ndots"/> dots (first), or after the name failed as given.</summary>
    public IReadOnlyList<string> Search { get; init; } = [];

    /// <summary>Dots a name needs to be asked as given before the search list. Default 1.</summary>
    public int Ndots
    {
        get => _ndots;
        init => _ndots = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "ndots is 0 or more.");
    }

    /// <summary>How long to wait for one server's reply: more than zero, at most a minute. Default 5 s.</summary>
    public TimeSpan Timeout
    {
        get => _timeout;
        init => _timeout = value > TimeSpan.Zero && value <= TimeSpan.FromMinutes(1)
            ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "A DNS timeout is more than zero and at most a minute.");
    }

    /// <summary>Rounds over the servers before giving up; at least 1. Default 2.</summary>
    public int Attempts
    {
        get => _attempts;
        init => _attempts = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(value), value, "At least one attempt.");
    }

    /// <summary>Ask for IPv4 addresses only (<c>options no-aaaa</c>).</summary>
    public bool NoAaaa { get; init; }

    /// <summary>The resolv.conf these settings came from, read again when it changes; null: never read again.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Servers given in the relay's settings, which stand whatever the file says; null: the file's.</summary>
    public IReadOnlyList<IPEndPoint>? GivenServers { get; init; }

    /// <summary>Reads resolv.conf text; lines it does not know are skipped, as the C library skips them.</summary>
    public static ResolverConf Parse(string text) => Read(text, localDomain: null, resOptions: null, hostName: null);

    /// <summary>
    /// Reads <paramref name="path"/> as the C library would in this process: with <c>LOCALDOMAIN</c>, <c>RES_OPTIONS</c>
    /// and this host's name. A missing or unreadable file gives the defaults, as in the C library.
    /// </summary>
    public static ResolverConf Load(string path = DefaultPath) => FromFileText(SystemFile.ReadIfPresent(path), path);

    /// <summary>What <see cref="Load"/> makes of <paramref name="text"/> (null: no file) read from <paramref name="path"/>.</summary>
    internal static ResolverConf FromFileText(string? text, string path)
    {
        string? hostName;
        try
        {
            hostName = Dns.GetHostName();
        }
        catch (System.Net.Sockets.SocketException)
        {
            hostName = null;
        }

        return Read(text ?? "", Environment.GetEnvironmentVariable("LOCALDOMAIN"), Environment.GetEnvironmentVariable("RES_OPTIONS"), hostName)
            with { SourcePath = path };
    }

    /// <summary>resolv.conf text, then the environment's overrides, then the host name's domain when no search list was set.</summary>
    internal static ResolverConf Read(string text, string? localDomain, string? resOptions, string? hostName)
    {
        var servers = new List<IPEndPoint>();
        IReadOnlyList<string>? search = null;
        var conf = new ResolverConf();
        foreach (string rawLine in text.Split('\n'))
        {
            // As in the C library, a keyword counts only at the very start of its line.
            string[] words = rawLine.Split([' ', '\t', '\r'], StringSplitOptions.RemoveEmptyEntries);
            if (words.Length == 0 || rawLine[0] is ' ' or '\t' or '#' or ';')
            {
                continue;
            }

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
                    search = SearchList(words.Skip(1));
                    break;
                case "options":
                    conf = WithOptions(conf, words.Skip(1));
                    break;
            }
        }

        if (!string.IsNullOrWhiteSpace(localDomain))
        {
            search = SearchList(localDomain.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        }

        if (!string.IsNullOrWhiteSpace(resOptions))
        {
            conf = WithOptions(conf, resOptions.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
        }

        if (search is null && hostName?.IndexOf('.') is int dot and >= 0)
        {
            search = SearchList([hostName[(dot + 1)..]]);
        }

        return conf with
        {
            Servers = servers.Count > 0 ? servers : conf.Servers,
            Search = search ?? [],
        };
    }

    private static string[] SearchList(IEnumerable<string> domains) =>
        [.. domains.Select(d => d.TrimEnd('.')).Where(d => d.Length > 0 && HostSyntax.Parse(d, out _) == HostKind.Name)];

    /// <summary>
    /// Whether name lookups on this machine are <c>/etc/hosts</c> then DNS and nothing else, so that this
    /// resolver answers as getaddrinfo would: the <c>hosts:</c> line of nsswitch.conf(5) names the services
    /// <c>files</c> and <c>dns</c>, in that order, and no other, with no action between them (one after
    /// <c>dns</c> changes nothing, as nothing follows). A machine that asks
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

            // An action between the two ("files [NOTFOUND=return] dns") changes when DNS is asked: not a match.
            var items = new List<string>();
            bool inAction = false;
            foreach (string word in line["hosts:".Length..].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (word.StartsWith('['))
                {
                    inAction = true;
                    items.Add("[action]");
                }

                if (!inAction)
                {
                    items.Add(word);
                }

                if (word.EndsWith(']'))
                {
                    inAction = false;
                }
            }

            return items is ["files", "dns", ..] && items.Skip(2).All(item => item == "[action]");
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

    private static ResolverConf WithOptions(ResolverConf conf, IEnumerable<string> options)
    {
        foreach (string option in options)
        {
            conf = WithOption(conf, option);
        }

        return conf;
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
