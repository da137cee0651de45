using System.Net;
using System.Net.Sockets;
using Passage.Identity;
using Passage.Tests.Infrastructure;

namespace Passage.Tests.Tunnel;

/// <summary>
/// A backend, a server end and a client end of the tunnel, as real <c>passage tunnel</c> processes on loopback,
/// with fresh identities pinned to each other (or trusting each other as the caller says, see <see cref="EndTrust"/>).
/// </summary>
internal sealed class TunnelPair : IAsyncDisposable
{
    private readonly TemporaryDirectory _directory = new();
    private EndTrust _serverTrust = null!;
    private int? _backendPort;
    private IDictionary<string, string?>? _environment;

    private TunnelPair()
    {
    }

    public TunnelBackend Backend { get; private set; } = null!;

    public PassageProcess Server { get; private set; } = null!;

    public PassageProcess Client { get; private set; } = null!;

    public NodeId ServerId { get; private set; } = null!;

    public NodeId ClientId { get; private set; } = null!;

    public string ServerKey { get; private set; } = "";

    public string ClientKey { get; private set; } = "";

    public int TunnelPort { get; private set; }

    public int HttpPort { get; private set; }

    public string Directory => _directory.Path;

    /// <summary>Extra members of the <c>system</c> section of both ends.</summary>
    public string SystemExtra { get; private set; } = "";

    /// <summary>http://127.0.0.1:port of the client end.</summary>
    public Uri BaseAddress => new($"http://127.0.0.1:{HttpPort}");

    /// <summary>
    /// Extra JSON members for the sections of both ends, e.g. <c>"transport": { "compress": true }</c>; with
    /// <paramref name="backendPort"/>, the server end sends requests there instead of to the pair's own <see cref="Backend"/>;
    /// with <paramref name="environment"/>, both ends (and an end started again) run with those variables.
    /// </summary>
    public static async Task<TunnelPair> StartAsync(
        string extra = "", bool waitUntilUp = true, string system = "", int? backendPort = null, IDictionary<string, string?>? environment = null)
    {
        var pair = new TunnelPair { _backendPort = backendPort, _environment = environment };
        pair.ServerKey = pair.NewIdentity("server.pem", out var serverId);
        pair.ClientKey = pair.NewIdentity("client.pem", out var clientId);
        pair.ServerId = serverId;
        pair.ClientId = clientId;
        await pair.StartEndsAsync(EndTrust.Pinned(clientId, pair.ServerKey), EndTrust.Pinned(serverId, pair.ClientKey), extra, waitUntilUp, system);
        return pair;
    }

    /// <summary>
    /// A pair whose ends prove themselves and check each other as <paramref name="server"/> and <paramref name="client"/>
    /// say (e.g. CA mode). Returns once the client end listens for HTTP; the session may still be coming up, or refused.
    /// </summary>
    public static async Task<TunnelPair> StartAsync(EndTrust server, EndTrust client)
    {
        var pair = new TunnelPair();
        await pair.StartEndsAsync(server, client, "", waitUntilUp: false, "");
        return pair;
    }

    private async Task StartEndsAsync(EndTrust server, EndTrust client, string extra, bool waitUntilUp, string system)
    {
        Backend = await TunnelBackend.StartAsync();
        // The OS picks the port (a port found free and then bound by the server end is a race with every other
        // test); a server end restarted later takes the same one again.
        TunnelPort = 0;
        SystemExtra = system;
        _serverTrust = server;
        Server = StartServer(extra);
        TunnelPort = await Server.WaitForListeningPortAsync();
        Client = StartEnd("client.json", ClientConfig(client, TunnelPort, extra, system));
        HttpPort = await Client.WaitForListeningPortAsync();
        if (waitUntilUp)
        {
            await Client.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal));
        }
    }

    public static string ClientConfig(NodeId serverId, int tunnelPort, string key, string extra, string system = "") =>
        ClientConfig(EndTrust.Pinned(serverId, key), tunnelPort, extra, system);

    public static string ClientConfig(EndTrust trust, int tunnelPort, string extra, string system = "") => $$"""
        {
          "general": { "mode": "client", {{trust.General}}, "connectAddress": "127.0.0.1:{{tunnelPort}}", "httpBindAddress": "127.0.0.1:0" },
          "tls": { {{trust.Tls}} },
          "system": { "connectInterval": "300ms" {{(system.Length > 0 ? "," + system : "")}} }
          {{(extra.Length > 0 ? "," + extra : "")}}
        }
        """;

    public string ServerConfig(string extra, NodeId? peer = null, string? key = null) =>
        ServerConfig(peer is null && key is null ? _serverTrust : EndTrust.Pinned(peer ?? ClientId, key ?? ServerKey), extra);

    public string ServerConfig(EndTrust trust, string extra) => ServerConfig(trust, TunnelPort, _backendPort ?? Backend.Port, extra, SystemExtra);

    /// <summary>The <c>system</c> section's members: <paramref name="system"/>, with a 10 s drain unless it sets its own.</summary>
    private static string SystemSection(string system) =>
        system.Contains("\"drainTimeout\"", StringComparison.Ordinal) ? system
        : system.Length > 0 ? "\"drainTimeout\": \"10s\", " + system : "\"drainTimeout\": \"10s\"";

    public static string ServerConfig(EndTrust trust, int tunnelPort, int backendPort, string extra, string system = "") => $$"""
        {
          "general": { "mode": "server", {{trust.General}}, "bindAddress": "127.0.0.1:{{tunnelPort}}", "httpConnectAddress": "127.0.0.1:{{backendPort}}" },
          "tls": { {{trust.Tls}} },
          "system": { {{SystemSection(system)}} }
          {{(extra.Length > 0 ? "," + extra : "")}}
        }
        """;

    /// <summary>Starts (or starts again) the server end on the same port.</summary>
    public PassageProcess StartServer(string extra = "") => StartEnd("server.json", ServerConfig(extra));

    public PassageProcess StartEnd(string name, string json, IDictionary<string, string?>? environment = null, (int Soft, int Hard)? openFiles = null)
    {
        var file = _directory.Write(name, json);
        return PassageProcess.Start(["tunnel", "--config", file, "--log-level", "debug"], environment ?? _environment, openFiles: openFiles);
    }

    public void ReplaceServer(PassageProcess server) => Server = server;

    /// <summary>
    /// Kills the server end and starts it again on the same port with <paramref name="json"/> (and <paramref name="openFiles"/>
    /// when given); returns once the client end has its second session up.
    /// </summary>
    public async Task RestartServerAsync(string json, (int Soft, int Hard)? openFiles = null)
    {
        await KillServerAsync();
        ReplaceServer(StartEnd("server.json", json, openFiles: openFiles));
        await Server.WaitForListeningPortAsync();
        await Client.WaitForLineAsync(l => l.Contains("tunnel up", StringComparison.Ordinal) && Client.StandardError.Split("tunnel up").Length > 2, TimeSpan.FromSeconds(20));
    }

    /// <summary>Kills the server end (SIGKILL: no goodbye beyond what the kernel sends).</summary>
    public async Task KillServerAsync()
    {
        await Server.DisposeAsync();
        Server = null!;
    }

    public HttpClient CreateHttpClient() => new(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None })
    {
        BaseAddress = BaseAddress,
        Timeout = TimeSpan.FromSeconds(60),
    };

    /// <summary>A new identity file in the pair's directory.</summary>
    public string NewIdentity(string name, out NodeId id)
    {
        var path = Path.Combine(_directory.Path, name);
        using var identity = NodeIdentity.Create();
        identity.Save(path, overwrite: false);
        id = identity.NodeId;
        return path;
    }

    /// <summary>A port that was free a moment ago (for an end that must come back on the same port).</summary>
    public static int FreePort()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (Client is not null)
        {
            await Client.DisposeAsync();
        }
        if (Server is not null)
        {
            await Server.DisposeAsync();
        }
        if (Backend is not null)
        {
            await Backend.DisposeAsync();
        }
        _directory.Dispose();
    }
}
