using System.Text.Json;
using Passage.Configuration;
using Passage.Relay;
using Passage.Telemetry;

namespace Passage.Tunnel;

public static partial class TunnelSettings
{
    /// <summary>
    /// Writes the effective tunnel configuration in the file's own schema, defaults included, so that it reads back as the
    /// same settings (a tunnel's files are paths; it holds no secret of its own).
    /// </summary>
    public static string ToJson(TunnelOptions tunnel, LogOptions log)
    {
        ArgumentNullException.ThrowIfNull(tunnel);
        ArgumentNullException.ThrowIfNull(log);
        return SettingsJson.Write(json =>
        {
            json.WriteStartObject("general");
            json.WriteString("mode", tunnel.Mode == TunnelMode.Server ? "server" : "client");
            WriteIfSet(json, "peer", tunnel.Peer?.ToString());
            WriteIfSet(json, "peerHostname", tunnel.PeerHostname);
            json.WriteString("bindAddress", RelaySettings.FormatEndpoint(tunnel.BindAddress));
            WriteIfSet(json, "connectAddress", tunnel.ConnectAddress?.ToString());
            json.WriteString("httpBindAddress", RelaySettings.FormatEndpoint(tunnel.HttpBindAddress));
            WriteIfSet(json, "httpConnectAddress", tunnel.HttpConnectAddress?.ToString());
            WriteIfSet(json, "adminBindAddress", tunnel.AdminBindAddress is { } admin ? RelaySettings.FormatEndpoint(admin) : null);
            json.WriteEndObject();

            json.WriteStartObject("tls");
            json.WriteString("key", tunnel.KeyFile);
            WriteIfSet(json, "cert", tunnel.CertFile);
            WriteIfSet(json, "ca", tunnel.CaFile);
            json.WriteEndObject();

            json.WriteStartObject("transport");
            // "auto" is HTTP/2 where there is no QUIC, as here and on every machine Passage is built on.
            json.WriteString("protocol", tunnel.Protocol == TunnelProtocol.Http3 ? "h3" : "h2");
            json.WriteString("maxIdleTimeout", Duration.Format(tunnel.MaxIdleTimeout));
            json.WriteString("keepAliveInterval", Duration.Format(tunnel.KeepAliveInterval));
            json.WriteNumber("maxConcurrentHttpStreams", tunnel.MaxConcurrentHttpStreams);
            json.WriteNumber("streamReceiveWindow", tunnel.StreamReceiveWindow);
            json.WriteNumber("receiveWindow", tunnel.ReceiveWindow);
            if (tunnel.SocketReceiveBufferSize is { } receiveBuffer)
            {
                json.WriteNumber("socketReceiveBufferSize", receiveBuffer);
            }
            if (tunnel.SocketSendBufferSize is { } sendBuffer)
            {
                json.WriteNumber("socketSendBufferSize", sendBuffer);
            }
            WriteIfSet(json, "congestionAlgorithm", tunnel.CongestionAlgorithm);
            json.WriteBoolean("compress", tunnel.Compress);
            json.WriteEndObject();

            json.WriteStartObject("system");
            json.WriteString("connectInterval", Duration.Format(tunnel.ConnectInterval));
            json.WriteBoolean("tcpNoDelay", tunnel.TcpNoDelay);
            json.WriteBoolean("waitForFirstAttempt", tunnel.WaitForFirstAttempt);
            // As a decimal: a double is written in its shortest form, 1E-05 for 0.00001.
            json.WriteNumber("watchdogFactor", (decimal)tunnel.WatchdogFactor);
            json.WriteBoolean("addForwarded", tunnel.AddForwarded);
            json.WriteString("drainTimeout", Duration.Format(tunnel.DrainTimeout));
            json.WriteString("backendTimeout", Duration.Format(tunnel.BackendTimeout));
            json.WriteString("idleTimeout", Duration.Format(tunnel.IdleTimeout));
            json.WriteEndObject();

            log.WriteJson(json);
        });
    }

    private static void WriteIfSet(Utf8JsonWriter json, string name, string? value)
    {
        if (value is not null)
        {
            json.WriteString(name, value);
        }
    }
}
