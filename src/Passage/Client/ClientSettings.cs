using Passage.Configuration;
using Passage.Identity;

namespace Passage.Client;

/// <summary>The <c>client</c> section of a configuration, read and validated (every error named by key).</summary>
public static partial class ClientSettings
{
    /// <summary>Every key this reader understands; <c>:*</c> marks free-form children.</summary>
    public static readonly IReadOnlyList<string> KnownKeys =
    [
        "client:relays:*", "client:socks:*", "client:http:*", "client:socksUsers:*", "client:httpUsers:*", "client:insecureOpen", "client:token", "client:key",
        "client:connectTimeout", "client:answerTimeout", "client:idleTimeout", "client:handshakeTimeout", "client:maxConnections", "client:admin",
        "log:level", "log:format",
    ];

    /// <summary>
    /// Reads the client and local proxy options, and the identity file the client presents to relays (<c>client.key</c>,
    /// null when none: it is loaded, or created, at start); check <see cref="SettingsReader.Errors"/> before using them.
    /// </summary>
    public static (PassageClientOptions Client, LocalProxyOptions Proxy, string? KeyFile) Read(SettingsReader reader)
    {
        reader.CheckUnknownKeys(KnownKeys);
        var relays = new List<PeerAddress>();
        foreach (var (key, value, layer) in reader.GetList("client:relays"))
        {
            if (PeerAddress.TryParse(value, out var peer, out var error))
            {
                relays.Add(peer);
            }
            else
            {
                reader.AddError(key, $"'{value}': {error}", layer);
            }
        }
        if (relays.Count == 0)
        {
            reader.AddError("client:relays", "no relay: give one or more as --relay ID@HOST:PORT (the ID is what `passage relay` prints as its node ID, or `passage id` of its key)");
        }

        var defaults = new LocalProxyOptions();
        var socks = ListenEndpoints(reader, "client:socks", defaults.SocksEndpoints);
        var http = ListenEndpoints(reader, "client:http", defaults.HttpEndpoints);
        var users = Users(reader, "client:socksUsers");
        var httpUsers = Users(reader, "client:httpUsers");
        if (!reader.GetBool("client:insecureOpen", false))
        {
            RequireCredentialsBeyondLoopback(reader, socks, http, users.Count > 0, httpUsers.Count > 0);
        }
        var clientDefaults = new PassageClientOptions();
        var token = reader.GetString("client:token") is { Length: > 0 } given ? given : null;
        if (token is not null && !Relay.Auth.ProxyCredentials.IsBearerToken(token))
        {
            // Not shown: it is a secret, and may be one with a typo.
            reader.AddError("client:token", PassageClientOptions.TokenProblem);
        }
        var keyFile = reader.GetString("client:key");
        if (keyFile is { Length: 0 })
        {
            // An unset shell variable (--key "$KEY"): the client would present no key, and relays that ask for one refuse it.
            reader.AddError("client:key", "the file name is empty (leave the setting out for a client that presents no key)");
            keyFile = null;
        }
        else if (keyFile is not null && NodeIdentity.FileProblem(keyFile) is { } problem)
        {
            reader.AddErrorWhereSet("client:key", problem);
        }
        return (
            new PassageClientOptions
            {
                Relays = relays,
                Token = token,
                ConnectTimeout = reader.GetDuration("client:connectTimeout", clientDefaults.ConnectTimeout),
                AnswerTimeout = reader.GetDuration("client:answerTimeout", clientDefaults.AnswerTimeout),
            },
            new LocalProxyOptions
            {
                SocksEndpoints = socks.Endpoints,
                HttpEndpoints = http.Endpoints,
                SocksUsers = users,
                HttpUsers = httpUsers,
                MaxConnections = reader.GetInt("client:maxConnections", defaults.MaxConnections, 1, 1_000_000),
                HandshakeTimeout = reader.GetDuration("client:handshakeTimeout", defaults.HandshakeTimeout),
                IdleTimeout = reader.GetDuration("client:idleTimeout", defaults.IdleTimeout, allowInfinite: true),
                AdminEndpoint = reader.GetListenEndpoint("client:admin"),
            },
            keyFile);
    }

    /// <summary>
    /// <c>client.socksUsers</c> or <c>client.httpUsers</c> (<paramref name="setting"/>): user name to password, each 1 to 255
    /// bytes of UTF-8 as RFC 1929 §2 carries them (and Basic, RFC 7617, within the same bounds). A name cannot hold a colon
    /// (the configuration's key separator; Basic's too, RFC 7617 §2). Passwords are never echoed in errors.
    /// </summary>
    private static Dictionary<string, string> Users(SettingsReader reader, string setting)
    {
        const string Expected = "an object of user: password pairs, e.g. { \"alice\": \"secret\" }";
        const int MaxBytes = 255;
        const char Replacement = '\uFFFD';
        var users = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, user, password, layer) in reader.GetMap(setting, Expected))
        {
            var userBytes = System.Text.Encoding.UTF8.GetByteCount(user);
            var passwordBytes = System.Text.Encoding.UTF8.GetByteCount(password);
            if (userBytes == 0)
            {
                reader.AddError(setting, "a user name is empty: RFC 1929 needs 1 to 255 bytes", layer);
            }
            else if (userBytes > MaxBytes)
            {
                reader.AddError(setting, $"user '{user[..16]}...' is {userBytes} bytes long: RFC 1929 allows 1 to {MaxBytes}", layer);
            }
            else if (passwordBytes == 0)
            {
                reader.AddError(key, "the password is empty: RFC 1929 needs 1 to 255 bytes", layer);
            }
            else if (passwordBytes > MaxBytes)
            {
                reader.AddError(key, $"the password is {passwordBytes} bytes long: RFC 1929 allows 1 to {MaxBytes}", layer);
            }
            else if (layer.Source is SettingsLayer.Environment or SettingsLayer.Flags && (user.Contains(Replacement) || password.Contains(Replacement)))
            {
                // The runtime reads an environment variable or an argument that is no UTF-8 (typed in Latin-1, say) with U+FFFD
                // where the bytes were: the credential taken would be another than the one written, and no client could send it.
                // A settings file is decoded strictly (its bytes that are no text are refused), so one there was written so.
                reader.AddError(key, $"the {(user.Contains(Replacement) ? "user name" : "password")} holds U+FFFD, which stands for bytes that are no UTF-8 text: give it as UTF-8 (a settings file takes the character itself, if it is meant)", layer);
            }
            else
            {
                users[user] = password;
            }
        }
        return users;
    }

    /// <summary>
    /// A local proxy that asks no credentials serves whoever reaches it, through this client's relays and with its token:
    /// beyond loopback, an open proxy on the user's name. So the HTTP proxy without <c>client.httpUsers</c> and SOCKS5
    /// without <c>client.socksUsers</c> listen on loopback only, unless <c>client.insecureOpen</c> says otherwise (as
    /// <c>relay.insecurePlain</c> does for the relay's plain CONNECT).
    /// </summary>
    private static void RequireCredentialsBeyondLoopback(
        SettingsReader reader, ListenSetting socks, ListenSetting http, bool socksAsksCredentials, bool httpAsksCredentials)
    {
        const string Open = "anyone who reaches it would open tunnels through your relays, with your token (set client.insecureOpen / --insecure-open to allow it)";
        foreach (var endpoint in http.Endpoints.Where(e => !httpAsksCredentials && !System.Net.IPAddress.IsLoopback(e.Address)))
        {
            reader.AddError("client:http", $"{endpoint} is not a loopback address: without client.httpUsers (--http-user) {Open}", http.Layer);
        }
        foreach (var endpoint in socks.Endpoints.Where(e => !socksAsksCredentials && !System.Net.IPAddress.IsLoopback(e.Address)))
        {
            reader.AddError("client:socks", $"{endpoint} is not a loopback address: without client.socksUsers (--socks-user) {Open}", socks.Layer);
        }
    }

    /// <summary>A listen setting's endpoints, and the layer they came from (null for the default).</summary>
    private readonly record struct ListenSetting(IReadOnlyList<System.Net.IPEndPoint> Endpoints, SettingsLayer? Layer);

    private static ListenSetting ListenEndpoints(SettingsReader reader, string key, IReadOnlyList<System.Net.IPEndPoint> fallback)
    {
        var list = reader.GetList(key);
        if (list.Count == 1 && list[0].Value is "off" or "none")
        {
            return new([], list[0].Layer);
        }
        if (list.Count == 0)
        {
            return new(fallback, null);
        }
        var (endpoints, layer) = Relay.RelaySettings.ReadEndpoints(reader, key);
        return new(endpoints, layer);
    }
}
