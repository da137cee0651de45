using System.IO.Compression;
using System.Net;

namespace Passage.Tunnel;

/// <summary>
/// A request body that is streamed from where it comes in (the local application, or the tunnel) to where it
/// goes, as it arrives, optionally compressed on the way. Never buffered whole.
/// </summary>
/// <remarks>
/// With trailers, the content writes its own HTTP/1.1 chunked framing and ends with the trailer section (read
/// once the body is through): how request trailers cross the link, and how they reach the backend, since the
/// .NET HTTP client cannot send them. Such content is only sent where that framing is expected: on the link
/// with <see cref="TunnelHeaders.Framing"/>, or by <see cref="ChunkedRequestHandler"/>.
/// </remarks>
internal sealed class StreamingContent : HttpContent
{
    private readonly Stream _source;
    private readonly bool _compress;
    private readonly CancellationToken _cancellationToken;
    private readonly Func<IEnumerable<KeyValuePair<string, string>>>? _trailers;
    private readonly BackendTimer? _backend;
    private readonly TimeSpan _senderIdle;
    private readonly CancellationTokenSource _stop = new();
    private Task? _copying;
    private int _serialized;

    /// <summary>Streams <paramref name="source"/>; with <paramref name="compress"/>, Brotli at its fastest level.</summary>
    /// <param name="source">The body.</param>
    /// <param name="compress">Compress with Brotli on the way (outside the chunked framing, if any).</param>
    /// <param name="cancellationToken">Ends the copy.</param>
    /// <param name="trailers">
    /// When set, the body is written in chunked framing and ends with these trailer fields, asked for once
    /// <paramref name="source"/> has ended.
    /// </param>
    /// <param name="backend">When the body goes to a backend: times its writes, and starts the wait for the answer once the body is through.</param>
    /// <param name="senderIdle">
    /// A sender that sends no byte of the body for this long (<c>system.idleTimeout</c>) has broken off: the copy fails,
    /// and <see cref="SenderError"/> is a 408. Zero or infinite: no limit.
    /// </param>
    public StreamingContent(Stream source, bool compress, CancellationToken cancellationToken, Func<IEnumerable<KeyValuePair<string, string>>>? trailers = null, BackendTimer? backend = null, TimeSpan senderIdle = default)
    {
        _senderIdle = senderIdle;
        _source = backend?.WatchClient(source) ?? source;
        _compress = compress;
        _cancellationToken = cancellationToken;
        _trailers = trailers;
        _backend = backend;
    }

    /// <summary>Whether the content writes its own chunked framing with a trailer section.</summary>
    public bool IsChunkFramed => _trailers is not null;

    /// <summary>How the copy ended; <see cref="BodyCopyResult.SourceFailed"/> means the sender broke off.</summary>
    public BodyCopyResult? Result { get; private set; }

    /// <summary>
    /// When <see cref="Result"/> is <see cref="BodyCopyResult.SourceFailed"/> because the sender broke HTTP/1.1's
    /// rules (bad chunked framing, a body shorter than its length, too slow): what the server read it as, with the
    /// status it calls for.
    /// </summary>
    public Microsoft.AspNetCore.Http.BadHttpRequestException? SenderError { get; private set; }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    /// <summary>
    /// Ends the body's copy if it still runs, and returns once it has ended: the copy reads the request's body (which
    /// the server reuses for the connection's next request once this one has ended) and times it on the request's
    /// <see cref="BackendTimer"/>, so the exchange must not end before it. The HTTP client does not always wait for it:
    /// when an answer's head fails (malformed, cut off) while the body is still coming, it closes the connection and
    /// leaves the copy to end in its own time.
    /// </summary>
    public async Task EndAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (Volatile.Read(ref _copying) is not { } copying)
        {
            return;
        }
        try
        {
            await copying.ConfigureAwait(false);
        }
        catch (Exception e) when (BodyCopier.IsIoFailure(e))
        {
            // Cut off here, or the exchange had already failed: either way not the answer's business.
        }
    }

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _serialized, 1) != 0)
        {
            // The body is read from its source as it goes, so it goes once. The HTTP/2 client sends a request again when its
            // server refuses the stream (REFUSED_STREAM, or a GOAWAY that leaves it out, RFC 9113 §8.7) even after part of
            // the body has gone: a second copy sent only the rest, which the receiver took for the whole body.
            return Task.FromException(new IOException("the request body has been sent in part already and cannot be sent again"));
        }
        var copying = SerializeAsync(stream, cancellationToken);
        Volatile.Write(ref _copying, copying);
        return copying;
    }

    private async Task SerializeAsync(Stream stream, CancellationToken cancellationToken)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellationToken, _stop.Token);
        stream = _backend?.WatchBackend(stream) ?? stream;
        if (_compress)
        {
            var brotli = new BrotliStream(stream, CompressionLevel.Fastest, leaveOpen: true);
            await using (brotli.ConfigureAwait(false))
            {
                await CopyAsync(brotli, linked.Token).ConfigureAwait(false);
            }
        }
        else
        {
            await CopyAsync(stream, linked.Token).ConfigureAwait(false);
        }
        _backend?.AwaitAnswer();
    }

    private async Task CopyAsync(Stream destination, CancellationToken cancellationToken)
    {
        var chunked = _trailers is null ? null : new ChunkedWriteStream(destination);
        Result = await BodyCopier.CopyAsync(_source, chunked ?? destination, cancellationToken,
            e => SenderError = e as Microsoft.AspNetCore.Http.BadHttpRequestException, _senderIdle).ConfigureAwait(false);
        if (Result != BodyCopyResult.Completed)
        {
            // The receiver must not take a cut-off body for a whole one: fail the exchange.
            throw new IOException($"request body not forwarded whole ({Result})");
        }
        if (chunked is not null)
        {
            await chunked.CompleteAsync(_trailers!(), cancellationToken).ConfigureAwait(false);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stop.Dispose();
        }
        base.Dispose(disposing);
    }

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }
}
