namespace Passage.Tests.Relay.Passthrough;

/// <summary>The first flight of a real client, and what the parser should find in it.</summary>
/// <param name="Source">Which client sent it.</param>
/// <param name="Bytes">The records holding the ClientHello, exactly as received.</param>
/// <param name="ServerName">The expected SNI, or null.</param>
/// <param name="ApplicationProtocols">The ALPN names the client was told to offer.</param>
public sealed record CapturedHello(HelloSource Source, byte[] Bytes, string? ServerName, string[] ApplicationProtocols);
