using System.IO.Compression;
using System.Net;

namespace Passage.Tunnel;

/// <summary>
/// A request body that is streamed from where it comes in (the local application, or the tunnel) to where it
/// goes, as it arrives, optionally compressed on the way. Never buffered whole.
/// </summary>
internal sealed class StreamingContent : HttpContent
{
    private readonly Stream _source;
    private readonly bool _compress;
    private readonly CancellationToken _cancellationToken;

    /// <summary>Streams <paramref name="source"/>; with <paramref name="compress"/>, Brotli at its fastest level.</summary>
    public StreamingContent(Stream source, bool compress, CancellationToken cancellationToken)
    {
        _source = source;
        _compress = compress;
        _cancellationToken = cancellationToken;
    }

    /// <summary>How the copy ended; <see cref="BodyCopyResult.SourceFailed"/> means the sender broke off.</summary>
    public BodyCopyResult? Result { get; private set; }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellationToken);
        if (_compress)
        {
            var brotli = new BrotliStream(stream, CompressionLevel.Fastest, leaveOpen: true);
            await using (brotli.ConfigureAwait(false))
            {
                Result = await BodyCopier.CopyAsync(_source, brotli, linked.Token).ConfigureAwait(false);
            }
        }
        else
        {
            Result = await BodyCopier.CopyAsync(_source, stream, linked.Token).ConfigureAwait(false);
        }
        if (Result != BodyCopyResult.Completed)
        {
            // The receiver must not take a cut-off body for a whole one: fail the exchange.
            throw new IOException($"request body not forwarded whole ({Result})");
        }
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
