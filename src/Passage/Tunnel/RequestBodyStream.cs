using System.Buffers;
using System.IO.Pipelines;
using Passage.Transport;

namespace Passage.Tunnel;

/// <summary>
/// A request body read from Kestrel's <see cref="PipeReader"/>, a read that its token ends ended through
/// <see cref="PipeReader.CancelPendingRead"/> and its result handed back. Kestrel's own body stream, whose read a token ends,
/// leaves an HTTP/1.1 body of known length marked as being read: its draining of the rest after the answer (a 408 for a
/// sender gone quiet) then failed, with an error line in the log for each such request.
/// </summary>
internal sealed class RequestBodyStream(PipeReader reader) : ReadOnlyStream
{
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        using var cancel = cancellationToken.UnsafeRegister(static r => ((PipeReader)r!).CancelPendingRead(), reader);
        while (true)
        {
            var result = await reader.ReadAsync(CancellationToken.None).ConfigureAwait(false);
            var data = result.Buffer;
            if (result.IsCanceled)
            {
                // Ours, or one left over from an earlier read's token that ended as the read did: nothing is taken.
                reader.AdvanceTo(data.Start);
                cancellationToken.ThrowIfCancellationRequested();
                continue;
            }
            if (data.IsEmpty && !result.IsCompleted)
            {
                reader.AdvanceTo(data.Start, data.End);
                continue;
            }
            var count = (int)Math.Min(data.Length, buffer.Length);
            data.Slice(0, count).CopyTo(buffer.Span);
            reader.AdvanceTo(data.GetPosition(count));
            return count;
        }
    }
}
