using System.Buffers;
using System.Net.Sockets;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// The application's side of one plain <c>http://</c> request forwarded through a tunnel (one request per tunnel):
/// reads yield the request's body exactly as framed, passed on byte for byte, and then nothing more. Whatever the
/// application sends after it (a pipelined request, perhaps for another host, with that host's cookies) is read and
/// dropped until the application closes or its answer is out whole, never sent to this request's origin. The origin's answer, written here
/// (as <see cref="OriginAnswerConnection"/> gives it), passes straight through.
/// </summary>
/// <remarks>
/// The body is followed as <see cref="FramedBody"/> says, and the trailer section's fields that are not for the origin are
/// cut out. Broken chunked framing is an <see cref="InvalidDataException"/>, which ends the pump and resets the tunnel;
/// when the origin's final answer has not begun, the request is refused instead (<see cref="Refusal"/>): the application's
/// connection is left whole for its owner to answer 400 on, and nothing of the origin's reaches it any more. The
/// application's end of stream before the body is whole passes on as end of stream, as it would have before.
/// Once the answer is out whole (<see cref="Answered"/>), nothing more of the body goes on (the origin has said what it
/// had to say about it), and the application's connection is left whole for its owner to close gracefully
/// (<see cref="CloseAnsweredAsync"/>): a reset could cost the application the answer it was sent.
/// </remarks>
/// <param name="app">The application's connection.</param>
/// <param name="buffered">Bytes the application sent behind the request head, read already.</param>
/// <param name="body">How the request's body is delimited, and which of its trailer fields go on.</param>
/// <param name="claim">Who answers the application: shared with the origin's side.</param>
/// <param name="tally">Where the bytes the application took are counted (the pump running this end counts elsewhere): what is
/// dropped once the request is refused is not counted as delivered.</param>
internal sealed class RequestBodyConnection(
    IDuplexConnection app, ReadOnlyMemory<byte> buffered, FramedBody body, AnswerClaim claim, ByteTally? tally = null) : IDuplexConnection
{
    private const int DropSize = 4 * 1024;

    private ReadOnlyMemory<byte> _buffered = buffered;
    private bool _ended;
    private volatile bool _answered;
    // Ends a wait for the application's bytes once the answer is out whole: the tunnel then ends without waiting for them.
    private readonly CancellationTokenSource _answeredSource = new();

    /// <summary>Why the request was refused (its framing broke before the origin answered); null while it was not.</summary>
    public string? Refusal { get; private set; }

    /// <summary>
    /// True once the answer went to the application whole and its end with it (the origin's answer, or the 502 this proxy
    /// gave in its stead): nothing the tunnel does after that is the application's concern.
    /// </summary>
    public bool Answered => _answered;

    /// <inheritdoc />
    /// <remarks>Null: the body's end is found by reading, so bytes cannot go by splice.</remarks>
    public Socket? Socket => null;

    /// <inheritdoc />
    /// <remarks>
    /// Ends (0) as soon as the answer is out whole, a read that waits for the application too: the body ends there for the
    /// tunnel, which need not wait for the application to close (or for the rest of a body that no longer goes on).
    /// </remarks>
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        using var linked = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _answeredSource.Token) : null;
        try
        {
            return await ReadBodyAsync(buffer, linked?.Token ?? _answeredSource.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_answered && !cancellationToken.IsCancellationRequested)
        {
            return 0;
        }
    }

    private async ValueTask<int> ReadBodyAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (_answered)
            {
                // The rest of the body is dropped (see CloseAnsweredAsync), not sent after an answer already given.
                return 0;
            }
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
            int kept;
            try
            {
                kept = body.Take(buffer.Span[..read]);
            }
            catch (InvalidDataException e) when (claim.ForRefusal())
            {
                Refusal = e.Message;
                throw;
            }
            if (kept > 0)
            {
                return kept;
            }
        }
    }

    /// <summary>
    /// Past the body: what the application sends is read and dropped until it closes, then end of stream (or until the
    /// answer is out whole, when the tunnel need not wait for the application any more). The pump
    /// waits with a zero-byte read, holding no buffer, and that read does the dropping, with a small buffer of its own
    /// taken only while bytes are there.
    /// </summary>
    private async ValueTask<int> DropUntilEndAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _buffered = default;
        while (!_ended && !_answered)
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
    /// <remarks>Once the request is refused, nothing of the origin's goes on (nor is counted).</remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (claim.Refused)
        {
            return ValueTask.CompletedTask;
        }
        var write = app.WriteAsync(data, cancellationToken);
        if (tally is null)
        {
            return write;
        }
        if (write.IsCompletedSuccessfully)
        {
            tally.Add(PumpSide.Client, data.Length);
            return ValueTask.CompletedTask;
        }
        return CountedAsync(write, data.Length);
    }

    private async ValueTask CountedAsync(ValueTask write, int length)
    {
        await write.ConfigureAwait(false);
        tally!.Add(PumpSide.Client, length);
    }

    /// <inheritdoc />
    /// <remarks>The answer is out whole once its end is (see <see cref="Answered"/>).</remarks>
    public async ValueTask CompleteWritesAsync(CancellationToken cancellationToken)
    {
        if (claim.Refused)
        {
            return;
        }
        // Out whole as its end goes out, not after: the tunnel may break the moment the application has that end (an origin
        // that resets once it has answered), and the pump's abort must find the answer whole then, or it resets the
        // application's connection, failing the upload it may still be sending.
        _answered = true;
        try
        {
            await app.CompleteWritesAsync(cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            _answered = false;
            throw;
        }
        // Wakes the pump's wait for the application's bytes (the wait's end runs on the thread pool, not in here).
        await _answeredSource.CancelAsync().ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>
    /// A refused request's connection is kept for its refusal, and an answered one for its graceful close: a reset could
    /// cost the application that answer. Only an answer cut short resets it, which tells the application so.
    /// </remarks>
    public void Abort()
    {
        if (!claim.Refused && !_answered)
        {
            app.Abort();
        }
    }

    /// <summary>
    /// Closes the application's connection once its answer is out whole (<see cref="Answered"/>): what is left of the
    /// request's body is read and dropped until the body is whole or the application closes, or
    /// <paramref name="cancellationToken"/> gives up; then the connection closes as a refusal does
    /// (<see cref="LingeringClose"/>: what still comes is dropped until the application closes, briefly). Closing with the
    /// application's bytes unread would reset it, and an application that reads its answer only once it has sent its
    /// body would lose the answer. Never throws for network failures.
    /// </summary>
    public async Task CloseAnsweredAsync(TimeProvider time, CancellationToken cancellationToken)
    {
        var scratch = ArrayPool<byte>.Shared.Rent(DropSize);
        try
        {
            while (!body.Done)
            {
                var read = _buffered.Length;
                if (read > 0)
                {
                    // Taken as they are: the body's framing only says where it ends.
                    read = Math.Min(read, DropSize);
                    _buffered.Span[..read].CopyTo(scratch);
                    _buffered = _buffered[read..];
                }
                else if ((read = await app.ReadAsync(scratch.AsMemory(0, DropSize), cancellationToken).ConfigureAwait(false)) == 0)
                {
                    break;
                }
                body.Take(scratch.AsSpan(0, read));
                while (body.HasHeld)
                {
                    body.TakeHeld(scratch);
                }
            }
        }
        catch (Exception e) when (e is InvalidDataException or IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // Broken framing, a reset, or no end in time: nothing more to wait for.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
        await LingeringClose.CloseAsync(app, ReadOnlyMemory<byte>.Empty, time).ConfigureAwait(false);
    }

    /// <inheritdoc />
    /// <remarks>The application's connection stays its owner's to dispose.</remarks>
    public ValueTask DisposeAsync()
    {
        _answeredSource.Dispose();
        return ValueTask.CompletedTask;
    }
}
