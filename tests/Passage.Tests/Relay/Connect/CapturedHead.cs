namespace Passage.Tests.Relay.Connect;

/// <summary>A CONNECT request head as a real client sent it, and what it asked for.</summary>
public sealed record CapturedHead(HeadSource Source, byte[] Bytes, string Host, int Port, string? ProxyAuthorization)
{
    public override string ToString() => Source.ToString();
}
