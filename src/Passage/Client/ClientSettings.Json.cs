using System.Net;
using System.Text.Json;
using Passage.Configuration;
using Passage.Relay;
using Passage.Telemetry;

namespace Passage.Client;

public static partial class ClientSettings
{
    /// <summary>
    /// Writes the effective client configuration in the file's own schema, defaults included, so that it reads back as
    /// the same settings; secrets (the token, the proxies' users and passwords) are never written: a comment says which
    /// are set, and where they are, the output reads back only once they are added again.
    /// </summary>
    public static string ToJson(PassageClientOptions client, LocalProxyOptions proxy, string? keyFile, LogOptions log)
    {
        ArgumentNullException.ThrowIfNull(client);
        ArgumentNullException.ThrowIfNull(proxy);
        ArgumentNullException.ThrowIfNull(log);
        return SettingsJson.Write(json =>
        {
            json.WriteStartObject("client");
            // First, where a comment reads best (the writer puts one after a value before its comma).
            if (client.Token is not null)
            {
                json.WriteCommentValue(" client.token is set (not shown) ");
            }
            WriteUsers(json, "socksUsers", proxy.SocksUsers);
            WriteUsers(json, "httpUsers", proxy.HttpUsers);
            SettingsJson.WriteArray(json, "relays", client.Relays.Select(r => r.ToString()));
            if (keyFile is not null)
            {
                json.WriteString("key", keyFile);
            }
            WriteListeners(json, "socks", proxy.SocksEndpoints);
            WriteListeners(json, "http", proxy.HttpEndpoints);
            // Not kept in the options: what the listeners above need, so that the output reads back without errors.
            json.WriteBoolean("insecureOpen",
                proxy.SocksUsers.Count == 0 && proxy.SocksEndpoints.Any(e => !IPAddress.IsLoopback(e.Address))
                || proxy.HttpUsers.Count == 0 && proxy.HttpEndpoints.Any(e => !IPAddress.IsLoopback(e.Address)));
            json.WriteString("connectTimeout", Duration.Format(client.ConnectTimeout));
            json.WriteString("answerTimeout", Duration.Format(client.AnswerTimeout));
            json.WriteString("handshakeTimeout", Duration.Format(proxy.HandshakeTimeout));
            json.WriteString("idleTimeout", Duration.Format(proxy.IdleTimeout));
            json.WriteNumber("maxConnections", proxy.MaxConnections);
            if (proxy.AdminEndpoint is { } admin)
            {
                json.WriteString("admin", RelaySettings.FormatEndpoint(admin));
            }
            json.WriteEndObject();
            log.WriteJson(json);
        });
    }

    /// <summary>A front door's endpoints, or <c>"off"</c> for none (an empty list would read back as the default).</summary>
    private static void WriteListeners(Utf8JsonWriter json, string name, IReadOnlyList<IPEndPoint> endpoints)
    {
        if (endpoints.Count == 0)
        {
            json.WriteString(name, "off");
            return;
        }
        SettingsJson.WriteArray(json, name, endpoints.Select(RelaySettings.FormatEndpoint));
    }

    /// <summary>How many users a front door asks credentials of, in a comment: their passwords are secrets.</summary>
    private static void WriteUsers(Utf8JsonWriter json, string name, IReadOnlyDictionary<string, string> users)
    {
        if (users.Count > 0)
        {
            json.WriteCommentValue($" client.{name}: {users.Count} {(users.Count == 1 ? "user" : "users")} (not shown) ");
        }
    }
}
