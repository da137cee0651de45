using System.Buffers;
using System.Net.Sockets;
using Passage.Http;
using Passage.Relay;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// The origin's side of one plain <c>http://</c> request forwarded through a tunnel: writes go to the origin as they
/// are; reads yield the origin's answer as the application is to get it, and end where the answer ends.
/// </summary>
/// <remarks>
/// <para>Each head (any 1xx interim ones, at most <see cref="MaxInterim"/>, then the final one) is read whole, at most
/// 64 KiB (<see cref="HeadBuffer"/>), and goes on as <see cref="OriginAnswerHead"/> writes it: without this hop's fields,
/// the final one with <c>Connection: close</c>. The body follows byte for byte (<see cref="FramedBody"/>) up to its end, and then reads end: whatever the origin sends
/// after its answer (it may keep its connection open, whatever our <c>Connection: close</c> said) is never the
/// application's, and the application's connection is closed after the answer, as that head told it.</para>
/// <para>An HTTP/1.0 application gets no interim answer (RFC 9110 §15.2: it does not expect one), and a chunked body
/// as its data alone, which its connection's close ends (RFC 9112 §6.1, §6.3); one the origin cuts short ends in a reset
/// instead, since a close would tell it the body was whole (RFC 9112 §8).</para>
/// <para>An origin that closes before its final head is whole, whose head is too large or one this proxy cannot pass
/// on, or that sends more interim answers than <see cref="MaxInterim"/>, is answered for: the application gets a 502 with a Proxy-Status (see <see cref="Refusal"/>) instead of a
/// bare close. So is a tunnel that breaks before the final head is whole (the origin reset its connection, or the
/// relay's went): nothing of the answer has reached the application, which is told so rather than reset, whether the
/// break is met first by the read of the answer or by a write of the request's body (see <see cref="WriteAsync"/>).</para>
/// </remarks>
/// <param name="origin">The tunnel to the origin; its owner's to dispose.</param>
/// <param name="request">The request answered: its method (HEAD's answer has no body) and version.</param>
/// <param name="claim">Who answers the application: shared with the request's side, which may refuse the request first.</param>
/// <param name="tally">Where the bytes the tunnel took are counted (the pump running this end counts elsewhere): a write dropped
/// after the tunnel broke is not counted as delivered.</param>
/// <param name="time">The clock of the watch for a body write the origin does not take once it has answered.</param>
internal sealed class OriginAnswerConnection(IDuplexConnection origin, ProxyRequestHead request, AnswerClaim claim, ByteTally? tally = null, TimeProvider? time = null) : IDuplexConnection
{
    /// <summary>The most interim (1xx) answers one request may get (<see cref="InterimAnswers.Max"/>).</summary>
    public const int MaxInterim = InterimAnswers.Max;

    private const int DrainSize = 4 * 1024;

    /// <summary>Where each head is read; given back as soon as the final one is (it holds the origin's Set-Cookie, say).</summary>
    private readonly HeadBuffer _head = new();
    private int _interim;
    private ReadOnlyMemory<byte> _ready;
    private FramedBody? _body;
    private bool _ended;
    // The watch for a stuck body write, from the answer's end on (see WatchForAStuckWrite): the writes started so far, and
    // so many when it last looked; whether one is under way; whether it gave one up and reset the tunnel.
    private ITimer? _watch;
    private long _writesStarted;
    private long _writesStartedAtLastLook;
    private int _writing;
    private volatile bool _bodyGivenUp;
    private volatile bool _aborted;
    private volatile bool _writesBroke;

    /// <summary>Why the application was answered by this proxy instead of the origin, if it was.</summary>
    public RefusalReason? Refusal { get; private set; }

    /// <inheritdoc />
    /// <remarks>Null: the answer's head is rewritten and its end found by reading.</remarks>
    public Socket? Socket => null;

    /// <inheritdoc />
    public async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (!_ready.IsEmpty)
            {
                var n = Math.Min(buffer.Length, _ready.Length);
                _ready.Span[..n].CopyTo(buffer.Span);
                _ready = _ready[n..];
                return n;
            }
            if (_ended)
            {
                return 0;
            }
            if (_body is null)
            {
                try
                {
                    if (buffer.IsEmpty)
                    {
                        // Waiting for the head holds no buffer; bytes behind an interim head are there at once.
                        return _head.Filled > 0 ? 0 : await origin.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
                    }
                    await ReadHeadAsync(cancellationToken).ConfigureAwait(false);
                }
                catch (IOException) when (!_aborted)
                {
                    // Not the pump's own teardown (see Abort): the tunnel broke before the final answer began.
                    Refuse(RefusalReason.OriginNoAnswer, "the tunnel broke before the origin answered");
                }
                continue;
            }
            if (_body.HasHeld)
            {
                return _body.TakeHeld(buffer.Span);
            }
            if (_body.Done)
            {
                _ended = true;
                WatchForAStuckWrite();
                continue;
            }
            var read = await origin.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                // End of stream (a body cut short ends so too: the application's framing tells it, or, where it cannot, a
                // reset does), or readiness.
                if (!buffer.IsEmpty)
                {
                    _body.Ended();
                    WatchForAStuckWrite();
                }
                return 0;
            }
            var kept = _body.Take(buffer.Span[..read]);
            if (kept > 0)
            {
                return kept;
            }
        }
    }

    /// <summary>Reads the next head whole and makes ready what the application is to get of it: the head, or a refusal.</summary>
    private async ValueTask ReadHeadAsync(CancellationToken cancellationToken)
    {
        var read = await _head.ReadAsync(origin, skipEmptyLines: false, cancellationToken).ConfigureAwait(false);
        switch (read.Outcome)
        {
            case HeadReader.Outcome.Closed:
                Refuse(RefusalReason.OriginNoAnswer, read.Filled == 0 ? "the origin closed without answering" : "the origin closed inside its answer's head");
                return;
            case HeadReader.Outcome.TooLarge:
                Refuse(RefusalReason.OriginAnswerTooLarge, $"the origin's answer head is larger than {HeadBuffer.MaxSize / 1024} KiB");
                return;
            case HeadReader.Outcome.BareLf:
                Refuse(RefusalReason.OriginBadAnswer, "a line of the origin's answer head ends in a bare LF");
                return;
            case HeadReader.Outcome.NotHttp:
                Refuse(RefusalReason.OriginBadAnswer, "the origin's answer does not start with an HTTP/1.x status line");
                return;
        }
        if (OriginAnswerHead.Parse(_head.Bytes.AsSpan(read.Start..read.End), request, out var error) is not { } answer)
        {
            Refuse(RefusalReason.OriginBadAnswer, error ?? "the origin's answer is malformed");
            return;
        }
        if (answer.IsInterim && ++_interim > MaxInterim)
        {
            Refuse(RefusalReason.OriginBadAnswer, $"the origin sent more than {MaxInterim} interim (1xx) answers");
            return;
        }
        if (answer.IsInterim)
        {
            // What came behind it is the next head's beginning. An HTTP/1.0 application is not sent it (RFC 9110 §15.2).
            _ready = request.IsHttp10 ? ReadOnlyMemory<byte>.Empty : answer.ToApplication();
            _head.TakeUpTo(read.End);
            return;
        }
        var rest = _head.Bytes.AsSpan(read.End, read.Filled - read.End);
        if (!claim.ForOrigin())
        {
            // The request was refused: the application gets that, not this.
            _ended = true;
            _head.Return();
            return;
        }
        _body = new FramedBody(answer.Framing, answer.ContentLength, answer.Forwards, unchunk: request.IsHttp10);
        var head = answer.ToApplication();
        var ready = new byte[head.Length + rest.Length];
        head.CopyTo(ready, 0);
        rest.CopyTo(ready.AsSpan(head.Length));
        int kept;
        try
        {
            kept = _body.Take(ready.AsSpan(head.Length));
        }
        catch (InvalidDataException e)
        {
            // The body's framing broke in the bytes that came with the head: nothing of the answer went on yet, so the
            // application can still be told why, rather than reset.
            Refuse(RefusalReason.OriginBadAnswer, "the origin's answer body: " + e.Message);
            return;
        }
        _ready = ready.AsMemory(0, head.Length + kept);
        _head.Return();
    }

    /// <summary>
    /// Once the origin's answer went to the application whole, reads what the tunnel still brings until its end and
    /// drops it, so that the tunnel's owner closes it as ended rather than resets it. Over HTTP/2 the .NET client resets
    /// a tunnel stream disposed before the relay's end of it was read, and the relay then resets its connection to the
    /// origin: an origin that reads the request's body after answering (and ended its side as the application ended
    /// its own) saw a reset instead of the request's end. An answer refused, or not begun, leaves the tunnel as it is.
    /// </summary>
    /// <param name="cancellationToken">Gives up on an origin that keeps its side open.</param>
    public async ValueTask DrainAsync(CancellationToken cancellationToken)
    {
        if (_body is null || Refusal is not null || _bodyGivenUp)
        {
            return;
        }
        var scratch = ArrayPool<byte>.Shared.Rent(DrainSize);
        try
        {
            while (await origin.ReadAsync(scratch.AsMemory(0, DrainSize), cancellationToken).ConfigureAwait(false) > 0)
            {
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(scratch);
        }
    }

    /// <summary>
    /// The answer has ended (the origin's, or this proxy's in its stead): from now on, a write of the request's body that
    /// the tunnel has not taken for <see cref="LingeringClose.Deadline"/> is given up, and the tunnel reset. An origin that
    /// answered early (a 413) and then neither reads the body nor goes away would otherwise hold that write, and with it the
    /// application's sends and both connections, until the tunnel's idle timeout, its answer all there. A write merely
    /// under way is not given up, nor are the body's later writes: an origin that reads the body after answering gets it.
    /// Once a write is given up, its failure and every write after it are dropped (see <see cref="UnlessBrokenAsync"/>), so
    /// the rest of the body is read and dropped and the application's connection closes gracefully, its answer whole.
    /// </summary>
    private void WatchForAStuckWrite()
    {
        if (_watch is null && !_aborted)
        {
            _writesStartedAtLastLook = Interlocked.Read(ref _writesStarted);
            _watch = (time ?? TimeProvider.System).CreateTimer(
                static state => ((OriginAnswerConnection)state!).LookForAStuckWrite(), this, LingeringClose.Deadline, LingeringClose.Deadline);
        }
    }

    /// <summary>Gives up a write under way since the last look (no write has started since): see <see cref="WatchForAStuckWrite"/>.</summary>
    private void LookForAStuckWrite()
    {
        var started = Interlocked.Read(ref _writesStarted);
        if (Volatile.Read(ref _writing) == 1 && started == _writesStartedAtLastLook && !_bodyGivenUp)
        {
            _bodyGivenUp = true;
            origin.Abort();
        }
        _writesStartedAtLastLook = started;
    }

    /// <summary>The application gets <paramref name="reason"/>'s answer instead of the origin's, and then its end.</summary>
    private void Refuse(RefusalReason reason, string detail)
    {
        _ended = true;
        WatchForAStuckWrite();
        if (!claim.ForOrigin())
        {
            _head.Return();
            return;
        }
        Refusal = reason;
        _ready = HttpProxySession.Answer(reason, detail);
        _head.Return();
    }

    /// <inheritdoc />
    /// <remarks>
    /// A write that fails before the origin's final answer began (the tunnel broke under the request's body) is dropped,
    /// and so is the rest of the body: it does not end the pump. The tunnel broke under both directions, and the read of
    /// the answer fails too, which answers the application with a 502 (see <see cref="ReadAsync"/>). Were the write's
    /// failure to end the pump, its teardown would reset the application's connection, and the 502 would be lost
    /// whenever the write failed first.
    /// </remarks>
    public ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        if (_writesBroke)
        {
            return ValueTask.CompletedTask;
        }
        Interlocked.Increment(ref _writesStarted);
        Volatile.Write(ref _writing, 1);
        ValueTask write;
        try
        {
            write = origin.WriteAsync(data, cancellationToken);
        }
        catch (Exception e)
        {
            // Thrown before any wait: no write is under way for the watch to give up.
            Volatile.Write(ref _writing, 0);
            write = ValueTask.FromException(e);
        }
        return UnlessBrokenAsync(write, data.Length);
    }

    /// <inheritdoc />
    /// <remarks>A failure before the origin's final answer began is the read's to tell, as a write's is (see <see cref="WriteAsync"/>).</remarks>
    public ValueTask CompleteWritesAsync(CancellationToken cancellationToken) =>
        _writesBroke || _bodyGivenUp ? ValueTask.CompletedTask : UnlessBrokenAsync(origin.CompleteWritesAsync(cancellationToken), 0);

    /// <summary>
    /// <paramref name="write"/> of <paramref name="length"/> bytes, counted once the tunnel took them; its failure dropped (and
    /// every write after it) while the origin's final answer has not begun, or once a write was given up after it ended
    /// (see <see cref="WatchForAStuckWrite"/>). What is dropped is not counted.
    /// </summary>
    private async ValueTask UnlessBrokenAsync(ValueTask write, int length)
    {
        try
        {
            await write.ConfigureAwait(false);
            tally?.Add(PumpSide.Upstream, length);
        }
        catch (IOException) when (BeforeTheAnswer)
        {
            _writesBroke = true;
        }
        catch (Exception e) when (_bodyGivenUp && e is IOException or ObjectDisposedException or OperationCanceledException)
        {
            // Given up once the answer had ended (see WatchForAStuckWrite): the rest of the body goes nowhere.
            _writesBroke = true;
        }
        finally
        {
            Volatile.Write(ref _writing, 0);
        }
    }

    /// <summary>
    /// True while the origin's final answer has not begun (this proxy's 502 in its stead may have) and the pump is not
    /// tearing the tunnel down.
    /// </summary>
    private bool BeforeTheAnswer => Volatile.Read(ref _body) is null && !_aborted;

    /// <inheritdoc />
    /// <remarks>A read that fails after this is the abort's doing, not the tunnel's breaking: no answer is made of it.</remarks>
    public void Abort()
    {
        _aborted = true;
        origin.Abort();
    }

    /// <inheritdoc />
    /// <remarks>The tunnel stays its owner's to dispose; a head buffer still held goes back to the pool.</remarks>
    public ValueTask DisposeAsync()
    {
        _watch?.Dispose();
        _head.Return();
        return ValueTask.CompletedTask;
    }
}
