using System.Buffers;
using System.Text;
using Passage.Http;

namespace Passage.Tunnel;

/// <summary>
/// Writes a body in HTTP/1.1 chunked framing (RFC 9112 §7.1): every write becomes one chunk, and
/// <see cref="CompleteAsync"/> writes the last chunk and the trailer section. Write-only; leaves the inner
/// stream open.
/// </summary>
/// <remarks>
/// Trailer fields are written only where they may appear (<see cref="TunnelHeaders.IsAllowedTrailer"/>) and only
/// with a well-formed name and value, so a field that arrived over HTTP/2 cannot smuggle a line end into an
/// HTTP/1.1 connection.
/// </remarks>
internal sealed class ChunkedWriteStream(Stream inner) : Stream
{
    /// <summary>A size line (eight hex digits and CRLF at most) and the CRLF after the data.</summary>
    private const int MaxOverhead = 12;

    private bool _completed;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        if (buffer.IsEmpty)
        {
            // An empty chunk would end the body.
            return;
        }
        // One write per chunk: size line, data and CRLF together (a Kestrel body or an HTTP/2 request stream
        // would otherwise send each piece on its own).
        var chunk = ArrayPool<byte>.Shared.Rent(buffer.Length + MaxOverhead);
        try
        {
            buffer.Length.TryFormat(chunk, out var digits, "x", System.Globalization.CultureInfo.InvariantCulture);
            chunk[digits] = (byte)'\r';
            chunk[digits + 1] = (byte)'\n';
            buffer.Span.CopyTo(chunk.AsSpan(digits + 2));
            var end = digits + 2 + buffer.Length;
            chunk[end] = (byte)'\r';
            chunk[end + 1] = (byte)'\n';
            await inner.WriteAsync(chunk.AsMemory(0, end + 2), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(chunk);
        }
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => WriteAsync(buffer, offset, count).GetAwaiter().GetResult();

    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override void Flush() => inner.Flush();

    /// <summary>Ends the body: the last chunk, then <paramref name="trailers"/> (those that may be sent), then the empty line; flushes.</summary>
    public async Task CompleteAsync(IEnumerable<KeyValuePair<string, string>> trailers, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_completed, this);
        _completed = true;
        var end = new StringBuilder("0\r\n");
        foreach (var (name, value) in trailers)
        {
            if (TunnelHeaders.IsAllowedTrailer(name) && FieldSyntax.IsToken(name) && FieldSyntax.IsValue(value))
            {
                end.Append(name).Append(": ").Append(value.Trim(' ', '\t')).Append("\r\n");
            }
        }
        end.Append("\r\n");
        await inner.WriteAsync(Encoding.Latin1.GetBytes(end.ToString()), cancellationToken).ConfigureAwait(false);
        await inner.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
