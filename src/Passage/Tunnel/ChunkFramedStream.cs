using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// An upgraded connection's stream across the link, with the application's direction (client end to server end) in
/// HTTP/1.1 chunked framing, so that the application's end of sending can cross the link: the .NET HTTP/2 client cannot
/// end only its sending side of an extended CONNECT (closing the stream sends END_STREAM with RST_STREAM right after
/// it, which would end the backend's direction too). The client end writes every piece as a chunk and, when the
/// application half-closes, the last chunk (<see cref="CompleteWritesAsync"/>); the server end reads the chunks back,
/// and the last one is its end of stream, passed on to the backend as a half-close.
/// </summary>
/// <remarks>
/// Used only when both ends agree (<see cref="TunnelHeaders.Framing"/> on the extended CONNECT and on its answer), so an
/// end that does not know it gets the bytes unframed. The other direction is not framed: the server end can end it
/// with END_STREAM alone.
/// <para>An idle connection holds no buffer at either end: a zero-byte read of the server end's side waits until
/// content is there, reading the framing between chunks as it comes (<see cref="ChunkedReadStream"/>), so the pump
/// parks on it as on a socket.</para>
/// </remarks>
internal sealed class ChunkFramedStream : DelegatingStream
{
    private readonly ChunkedWriteStream? _writer;
    private readonly Http1Reader? _reader;
    private readonly ChunkedReadStream? _unframed;

    private ChunkFramedStream(Stream link, bool writesFramed)
        : base(link)
    {
        if (writesFramed)
        {
            _writer = new ChunkedWriteStream(link);
        }
        else
        {
            _reader = new Http1Reader(link);
            _unframed = new ChunkedReadStream(_reader);
        }
    }

    /// <summary>The client end's side: what it writes goes out framed; what it reads comes unframed.</summary>
    public static ChunkFramedStream FramingWrites(Stream link) => new(link, writesFramed: true);

    /// <summary>The server end's side: what it reads comes framed and is read back; what it writes goes out unframed.</summary>
    public static ChunkFramedStream UnframingReads(Stream link) => new(link, writesFramed: false);

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) =>
        _unframed?.ReadAsync(buffer, cancellationToken) ?? Inner.ReadAsync(buffer, cancellationToken);

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _writer?.WriteAsync(buffer, cancellationToken) ?? Inner.WriteAsync(buffer, cancellationToken);

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    /// <summary>Client end: the application has ended its sending side; the last chunk says so to the server end.</summary>
    public Task CompleteWritesAsync(CancellationToken cancellationToken) =>
        _writer?.CompleteAsync([], cancellationToken) ?? throw new InvalidOperationException("only the framing side ends its writes this way");

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _reader?.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        _reader?.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
