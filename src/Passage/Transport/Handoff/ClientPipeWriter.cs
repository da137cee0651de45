using System.IO.Pipelines;

namespace Passage.Transport.Handoff;

/// <summary>
/// The pipe Kestrel writes a handed-off connection's output into: a <see cref="PipeWriter"/> over the connection's
/// stream, except that a write failing because the client has gone (reset, broken pipe, the stream closed by an
/// abort) ends as a flush whose reader is gone (<see cref="FlushResult.IsCompleted"/>) instead of throwing.
/// </summary>
/// <remarks>
/// That is how Kestrel's own socket transport reports a client that went away, and the only way Kestrel expects:
/// anything a flush throws is to Kestrel an "Unexpected exception in TimingPipeFlusher.FlushAsync", logged at error
/// level with its stack trace. So every client that closed its TCP connection while bytes were on their way to it
/// (an HTTP/2 tunnel's, say) wrote an error line, as often as a client cared to. The read side sees the same
/// client leave and Kestrel ends the connection from there, at debug level (see <see cref="ClientPipeReader"/>). Any
/// other failure still throws, and Kestrel logs it as before.
/// </remarks>
/// <param name="inner">The pipe over the connection's stream.</param>
/// <param name="gone">
/// Called once, the first time a write finds the client gone: to tear the connection down at once, as Kestrel's own
/// transport does, rather than leave what the failed write held buffered for every later flush to retry.
/// </param>
internal sealed class ClientPipeWriter(PipeWriter inner, Action? gone = null) : PipeWriter
{
    private int _gone;

    public override bool CanGetUnflushedBytes => inner.CanGetUnflushedBytes;

    public override long UnflushedBytes => inner.UnflushedBytes;

    public override void Advance(int bytes) => inner.Advance(bytes);

    public override Memory<byte> GetMemory(int sizeHint = 0) => inner.GetMemory(sizeHint);

    public override Span<byte> GetSpan(int sizeHint = 0) => inner.GetSpan(sizeHint);

    public override void CancelPendingFlush() => inner.CancelPendingFlush();

    public override ValueTask<FlushResult> FlushAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var flush = inner.FlushAsync(cancellationToken);
            return flush.IsCompletedSuccessfully ? flush : Settle(flush);
        }
        catch (Exception e) when (ClientGone.Is(e))
        {
            return new ValueTask<FlushResult>(Left());
        }
    }

    public override ValueTask<FlushResult> WriteAsync(ReadOnlyMemory<byte> source, CancellationToken cancellationToken = default)
    {
        try
        {
            var write = inner.WriteAsync(source, cancellationToken);
            return write.IsCompletedSuccessfully ? write : Settle(write);
        }
        catch (Exception e) when (ClientGone.Is(e))
        {
            return new ValueTask<FlushResult>(Left());
        }
    }

    public override void Complete(Exception? exception = null)
    {
        try
        {
            // Completing flushes what is still buffered.
            inner.Complete(exception);
        }
        catch (Exception e) when (ClientGone.Is(e))
        {
            // Nobody left to flush to.
        }
    }

    public override async ValueTask CompleteAsync(Exception? exception = null)
    {
        try
        {
            await inner.CompleteAsync(exception).ConfigureAwait(false);
        }
        catch (Exception e) when (ClientGone.Is(e))
        {
            // Nobody left to flush to.
        }
    }

    /// <summary>The flush result of a client gone; the first time, the connection is torn down.</summary>
    private FlushResult Left()
    {
        if (Interlocked.Exchange(ref _gone, 1) == 0)
        {
            gone?.Invoke();
        }
        return new FlushResult(isCanceled: false, isCompleted: true);
    }

    private async ValueTask<FlushResult> Settle(ValueTask<FlushResult> flush)
    {
        try
        {
            return await flush.ConfigureAwait(false);
        }
        catch (Exception e) when (ClientGone.Is(e))
        {
            return Left();
        }
    }
}
