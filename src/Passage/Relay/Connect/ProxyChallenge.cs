namespace Passage.Relay.Connect;

/// <summary>The <c>Proxy-Authenticate</c> value sent with every 407 (RFC 9110 §11.7.1): both schemes Passage accepts.</summary>
internal static class ProxyChallenge
{
    public const string Value = "Bearer realm=\"passage\", Basic realm=\"passage\"";
}
