using System.Buffers;
using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// The application's side of one plain <c>http://</c> request forwarded through a tunnel (one request per tunnel):
/// reads yield the request's body exactly as framed, passed on byte for byte, and then nothing more. Whatever the
/// application sends after it (a pipelined request, perhaps for another host, with that host's cookies) is read and
/// dropped until the application closes, never sent to this request's origin. The origin's answer, written here,
/// passes straight through.
/// </summary>
/// <remarks>
/// The body is followed as <see cref="FramedBody"/> says: broken chunked framing is an <see cref="InvalidDataException"/>,
/// which ends the pump, and the trailer section's fields that are not for the origin are cut out. The application's end
/// of stream before the body is whole passes on as end of stream, as it would have before.
/// </remarks>
/// <param name="app">The application's connection.</param>
/// <param name="buffered">Bytes the application sent behind the request head, read already.</param>
/// <param name="body">How the request's body is delimited, and which of its trailer fields go on.</param>
/// <param name="noAnswer">
/// What the application gets when the origin ends its side without a byte of answer (a 502 with its Proxy-Status), so
/// that it learns why rather than finding the connection closed; empty for nothing.
/// </param>
internal sealed class RequestBodyConnection(
    IDuplexConnection app, ReadOnlyMemory<byte> buffered, FramedBody body, ReadOnlyMemory<byte> noAnswer = default) : IDuplexConnection
{
    private const int DropSize = 4 * 1024;

    private ReadOnlyMemory<byte> _buffered = buffered;
    private bool _ended;
    private bool _answered;

    /// <summary>True when the origin ended its side without answering and the application was sent <c>noAnswer</c> instead.</summary>
    public bool AnsweredForOrigin { get; private set; }

    /// <inheritdoc />
    /// <remarks>Null: the body's end is found by reading, so bytes cannot go by splice.</remarks>
    public Socket? Socket => null;

    /// <inheritdoc />
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (body.HasHeld)
            {
                return body.TakeHeld(buffer.Span);
            }
            if (body.Done)
            {
                return await DropUntilEndAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            int read;
            if (!_buffered.IsEmpty)
            {
                if (buffer.IsEmpty)
                {
                    return 0;
                }
                read = Math.Min(buffer.Length, _buffered.Length);
                _buffered.Span[..read].CopyTo(buffer.Span);
                _buffered = _buffered[read..];
            }
            else
            {
                read = await app.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                if (read == 0)
                {
                    // End of stream, or a zero-byte read's readiness.
                    return 0;
                }
            }
            // Never 0 while the body is not whole (a trailer line held until whole reads on); what follows its end in
            // this read is dropped.
            var kept = body.Take(buffer.Span[..read]);
            if (kept > 0)
            {
                return kept;
            }
        }
    }

    /// <summary>
    /// Past the body: what the application sends is read and dropped until it closes, then end of stream. The pump
    /// waits with a zero-byte read, holding no buffer, and that read does the dropping, with a small buffer of its own
    /// taken only while bytes are there.
    /// </summary>
    private async ValueTask<int> DropUntilEndAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _buffered = default;
        while (!_ended)
        {
            await app.ReadAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
            var scratch = buffer.IsEmpty ? ArrayPool<byte>.Shared.Rent(DropSize) : null;
            try
            {
                _ended = await app.ReadAsync(scratch is null ? buffer : scratch.AsMemory(0, DropSize), cancellationToken).ConfigureAwait(false) == 0;
            }
            finally
            {
                if (scratch is not null)
                {
                    ArrayPool<byte>.Shared.Return(scratch);
                }
            }
        }
        return 0;
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        _answered |= !data.IsEmpty;
        return app.WriteAsync(data, cancellationToken);
    }

    /// <inheritdoc />
    /// <remarks>The origin's end: with no answer before it, the application gets <c>noAnswer</c> first.</remarks>
    public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (!_answered && !noAnswer.IsEmpty)
        {
            _answered = true;
            AnsweredForOrigin = true;
            await app.WriteAsync(noAnswer, cancellationToken).ConfigureAwait(false);
        }
        await app.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public void Abort() => app.Abort();

    /// <inheritdoc />
    /// <remarks>The application's connection stays its owner's to dispose.</remarks>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
