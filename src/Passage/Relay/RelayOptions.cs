using Passage.Relay.Connect;
using Passage.Relay.Destinations;
using Passage.Relay.Passthrough;

namespace Passage.Relay;

/// <summary>Everything <c>passage relay</c> runs with, validated.</summary>
public sealed record RelayOptions
{
    /// <summary>The pass-through front door; null when it is not enabled.</summary>
    public PassthroughOptions? Passthrough { get; init; }

    /// <summary>The CONNECT front door; null when it is not enabled.</summary>
    public ConnectOptions? Connect { get; init; }

    /// <summary>An address serving <c>/metrics</c> (Prometheus text) and <c>/healthz</c>. Default none.</summary>
    public System.Net.IPEndPoint? AdminEndpoint { get; init; }

    /// <summary>Destination policy shared by every front door.</summary>
    public DestinationOptions Destinations { get; init; } = new();

    /// <summary>Limits shared by every front door.</summary>
    public RelayLimits Limits { get; init; } = new();
}
