using System.Net;
using Passage.Configuration;
using Passage.Relay.Auth;
using Passage.Relay.Destinations;

namespace Passage.Relay.Connect;

/// <summary>The CONNECT keys of the <c>relay</c> section.</summary>
public static class ConnectSettings
{
    /// <summary>Where <c>passage relay</c> alone listens: loopback only.</summary>
    public static readonly IPEndPoint DefaultEndpoint = new(IPAddress.Loopback, 8443);

    /// <summary>Reads the CONNECT settings; <c>Configured</c> says whether any endpoint was set.</summary>
    public static (ConnectOptions Options, bool Configured) Read(SettingsReader reader)
    {
        var defaults = new ConnectOptions();
        var (endpoints, _) = RelaySettings.ReadEndpoints(reader, "relay:connect");
        var (plain, plainLayer) = RelaySettings.ReadEndpoints(reader, "relay:connectPlain");
        var insecurePlain = reader.GetBool("relay:insecurePlain", false);
        foreach (var endpoint in plain)
        {
            if (!insecurePlain && !IPAddress.IsLoopback(endpoint.Address))
            {
                reader.AddError("relay:connectPlain", $"{endpoint} is not a loopback address: without TLS, credentials and destinations cross the network in the clear (set relay.insecurePlain / --insecure-plain to allow it)", plainLayer);
            }
        }

        var (allow, allowLayer) = reader.GetValues("relay:allow");
        var (deny, denyLayer) = reader.GetValues("relay:deny");
        var ruleErrors = new List<string>();
        DestinationRules.Parse(allow, deny, SettingsReader.Display("relay:allow"), SettingsReader.Display("relay:deny"), ruleErrors);
        foreach (var error in ruleErrors)
        {
            reader.AddMessage(error, error.StartsWith("relay.allow", StringComparison.Ordinal) ? allowLayer : denyLayer);
        }

        var (clientIds, clientIdsLayer) = reader.GetValues("relay:clientIds");
        var idErrors = new List<string>();
        ClientIdPolicy.Parse(clientIds, SettingsReader.Display("relay:clientIds"), idErrors);
        foreach (var error in idErrors)
        {
            reader.AddMessage(error, clientIdsLayer);
        }
        if (clientIds.Count > 0 && plain.Count > 0)
        {
            // Node IDs are checked in the TLS handshake, which a plain door has none of: it served whoever reached it.
            reader.AddError("relay:connectPlain", "serves without TLS, so no client there presents a node ID: relay.clientIds could not keep anyone out of it (serve listed clients on relay.connect alone)", plainLayer);
        }

        var tokenFile = reader.GetString("relay:tokenFile") is { Length: > 0 } t ? t : null;
        if (tokenFile is not null)
        {
            // One that is there but is not a regular file (a directory, a FIFO) is told what it is, not "no such file".
            if (InputFile.Problem(tokenFile) is { } problem)
            {
                reader.AddErrorWhereSet("relay:tokenFile", problem);
            }
        }

        var version = reader.GetChoice("relay:minHttpVersion", "1.1", "1.1", "2");
        var options = new ConnectOptions
        {
            Endpoints = endpoints,
            PlainEndpoints = plain,
            KeyFile = reader.GetString("relay:key") is { Length: > 0 } keyFile ? keyFile : defaults.KeyFile,
            Names = reader.GetList("relay:names").Select(n => n.Value).ToArray(),
            Allow = allow,
            Deny = deny,
            RequireTls = reader.GetBool("relay:requireTls", false),
            TokenFile = tokenFile,
            ClientIds = clientIds,
            MinHttpVersion = version == "2" ? 2 : 1,
            RequestHeadTimeout = reader.GetDuration("relay:requestHeadTimeout", defaults.RequestHeadTimeout),
            MaxRequestHeadBytes = reader.GetInt("relay:maxRequestHeadBytes", defaults.MaxRequestHeadBytes, 512, 1024 * 1024),
            MaxTunnels = reader.GetInt("relay:maxTunnels", defaults.MaxTunnels, 1, 1_000_000),
            MaxTunnelsPerClient = reader.GetInt("relay:maxTunnelsPerClient", defaults.MaxTunnelsPerClient, 1, 1_000_000),
            MaxStreamsPerConnection = reader.GetInt("relay:maxStreamsPerConnection", defaults.MaxStreamsPerConnection, 1, 100_000),
            StreamWindowBytes = reader.GetInt("relay:streamWindow", defaults.StreamWindowBytes, 65_535, int.MaxValue),
            ConnectionWindowBytes = reader.GetInt("relay:connectionWindow", defaults.ConnectionWindowBytes, 65_535, int.MaxValue),
        };
        return (options, endpoints.Count > 0 || plain.Count > 0);
    }
}
