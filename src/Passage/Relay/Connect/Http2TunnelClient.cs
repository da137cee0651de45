using System.Net.Sockets;
using Microsoft.AspNetCore.Http.Features;
using Passage.Transport;

namespace Passage.Relay.Connect;

/// <summary>
/// The client's side of an HTTP/2 tunnel as the pump sees it: the tunnel's stream, whose end is a failure when it came as
/// a HEADERS frame (which Kestrel reads as the request's trailers), not as END_STREAM on DATA or on the request's headers.
/// </summary>
/// <remarks>
/// RFC 9113 §8.5: on a connected CONNECT stream, "Frame types other than DATA or stream management frames (RST_STREAM,
/// WINDOW_UPDATE, and PRIORITY) MUST NOT be sent ... and MUST be treated as a stream error if received", and a proxy that
/// detects an error with the stream sends its TCP connection a reset. Kestrel ends the request's content at trailers as at
/// END_STREAM: read so, the destination was told the bytes were whole. The pump passes an end that was a failure on as a
/// reset, both ways. A HEADERS frame that carries no field cannot be told from END_STREAM: Kestrel keeps no trace of it.
/// </remarks>
internal sealed class Http2TunnelClient(StreamConnection stream, IHttpRequestTrailersFeature? trailers) : IDuplexConnection, IEndOfStreamCheck
{
    /// <inheritdoc />
    public Socket? Socket => null;

    /// <summary>Whether the client of the request whose <paramref name="requestTrailers"/> these are ended its side with trailers.</summary>
    public static bool SentTrailers(IHttpRequestTrailersFeature? requestTrailers) => requestTrailers is { Available: true, Trailers.Count: > 0 };

    /// <inheritdoc />
    public bool EndOfStreamWasFailure() => SentTrailers(trailers);

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken) => stream.ReadAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken) => stream.WriteAsync(data, cancellationToken);

    /// <inheritdoc />
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) => stream.CompleteWritesAsync(cancellationToken);

    /// <inheritdoc />
    public void Abort() => stream.Abort();

    /// <inheritdoc />
    public ValueTask DisposeAsync() => stream.DisposeAsync();
}
