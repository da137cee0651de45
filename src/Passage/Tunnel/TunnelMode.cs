namespace Passage.Tunnel;

/// <summary>Which end of a tunnel this instance is (<c>general.mode</c>).</summary>
public enum TunnelMode
{
    /// <summary>Next to the service that sends requests: takes plain HTTP/1.1 in and carries it to the server.</summary>
    Client,

    /// <summary>Next to the service that answers: takes the tunnel in and sends each request to the backend.</summary>
    Server,
}
