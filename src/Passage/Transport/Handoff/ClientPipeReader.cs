using System.IO.Pipelines;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;

namespace Passage.Transport.Handoff;

/// <summary>
/// The pipe Kestrel reads a handed-off connection's input from: a <see cref="PipeReader"/> over the connection's
/// stream, except that a bare <see cref="SocketException"/> saying the client has gone (<see cref="ClientGone"/>)
/// reaches Kestrel as a <see cref="ConnectionResetException"/>, as from Kestrel's own socket transport.
/// </summary>
/// <remarks>
/// Kestrel takes an <see cref="IOException"/> from its input for a connection that ended (logged at debug level);
/// anything else ends the connection "abnormally", at warning level with a stack trace. Over TLS the failure already
/// comes wrapped in an <see cref="IOException"/>; on the plain endpoint (HTTP/2 with prior knowledge) Passage's socket
/// stream throws the <see cref="SocketException"/> itself, so every client that reset its connection wrote a warning.
/// </remarks>
/// <param name="inner">The pipe over the connection's stream.</param>
/// <param name="failed">Called each time a read fails (is not cancelled): the connection broke rather than ended.</param>
internal sealed class ClientPipeReader(PipeReader inner, Action? failed = null) : PipeReader
{
    public override void AdvanceTo(SequencePosition consumed) => inner.AdvanceTo(consumed);

    public override void AdvanceTo(SequencePosition consumed, SequencePosition examined) => inner.AdvanceTo(consumed, examined);

    public override void CancelPendingRead() => inner.CancelPendingRead();

    public override void Complete(Exception? exception = null) => inner.Complete(exception);

    public override ValueTask CompleteAsync(Exception? exception = null) => inner.CompleteAsync(exception);

    public override ValueTask<ReadResult> ReadAsync(CancellationToken cancellationToken = default)
    {
        try
        {
            var read = inner.ReadAsync(cancellationToken);
            return read.IsCompletedSuccessfully ? read : Settle(read);
        }
        catch (Exception e) when (Failing(e))
        {
            throw Reset((SocketException)e);
        }
    }

    public override bool TryRead(out ReadResult result)
    {
        try
        {
            return inner.TryRead(out result);
        }
        catch (Exception e) when (Failing(e))
        {
            throw Reset((SocketException)e);
        }
    }

    private static ConnectionResetException Reset(SocketException e) => new(e.Message, e);

    /// <summary>Tells of a read that failed (not one cancelled); true for a bare <see cref="SocketException"/> saying the client has gone, to be rethrown as a reset.</summary>
    private bool Failing(Exception e)
    {
        if (e is not OperationCanceledException)
        {
            failed?.Invoke();
        }
        return e is SocketException && ClientGone.Is(e);
    }

    private async ValueTask<ReadResult> Settle(ValueTask<ReadResult> read)
    {
        try
        {
            return await read.ConfigureAwait(false);
        }
        catch (Exception e) when (Failing(e))
        {
            throw Reset((SocketException)e);
        }
    }
}
