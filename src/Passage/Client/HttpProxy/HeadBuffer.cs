using System.Buffers;
using Passage.Transport;

namespace Passage.Client.HttpProxy;

/// <summary>
/// A pooled buffer an HTTP/1.1 head is read into (<see cref="HeadReader"/>), the application's request head or the
/// origin's answer heads: <see cref="FirstSize"/> first, which most heads fit in, grown once to <see cref="MaxSize"/>
/// only for a head that needs it. It goes back to the pool cleared: a head holds credentials and cookies.
/// </summary>
internal sealed class HeadBuffer
{
    /// <summary>The buffer first rented: most heads fit in it.</summary>
    public const int FirstSize = 16 * 1024;

    /// <summary>
    /// The largest head read, as HttpClient's own default (<c>MaxResponseHeadersLength</c>) and Squid's
    /// <c>request_header_max_size</c> and <c>reply_header_max_size</c> have it: large Cookie, Set-Cookie or
    /// Content-Security-Policy fields take real heads past 16 KiB, which a browser talking to the origin directly
    /// sends and reads.
    /// </summary>
    public const int MaxSize = 64 * 1024;

    private byte[]? _bytes;

    /// <summary>The buffer; rented at the first read, and again after <see cref="Return"/>.</summary>
    public byte[] Bytes => _bytes ??= ArrayPool<byte>.Shared.Rent(FirstSize);

    /// <summary>How many bytes of <see cref="Bytes"/> were read and not yet taken.</summary>
    public int Filled { get; private set; }

    /// <summary>
    /// Reads from <paramref name="from"/> until the head is whole or <see cref="MaxSize"/> bytes are there, as
    /// <see cref="HeadReader.ReadAsync"/> does: the buffer grows once, to the limit, when the head is larger than it.
    /// </summary>
    public async ValueTask<HeadReader.Result> ReadAsync(
        IDuplexConnection from, bool skipEmptyLines, CancellationToken cancellationToken, HeadReader.FirstLineCheck? firstLine = null)
    {
        while (true)
        {
            var bytes = Bytes;
            var read = await HeadReader.ReadAsync(from, bytes, Filled, Math.Min(bytes.Length, MaxSize), skipEmptyLines, cancellationToken, firstLine).ConfigureAwait(false);
            Filled = read.Filled;
            if (read.Outcome != HeadReader.Outcome.TooLarge || bytes.Length >= MaxSize)
            {
                return read;
            }
            // A head larger than most: the buffer grows once, to the limit, and the smaller one goes back.
            var larger = ArrayPool<byte>.Shared.Rent(MaxSize);
            bytes.AsSpan(0, Filled).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(bytes, clearArray: true);
            _bytes = larger;
        }
    }

    /// <summary>Keeps what was read after <paramref name="end"/> (the next head's beginning) as the start of the buffer.</summary>
    public void TakeUpTo(int end)
    {
        Bytes.AsSpan(end, Filled - end).CopyTo(Bytes);
        Filled -= end;
    }

    /// <summary>Gives the buffer back to the pool, cleared, if it holds one.</summary>
    public void Return()
    {
        if (_bytes is not null)
        {
            ArrayPool<byte>.Shared.Return(_bytes, clearArray: true);
            _bytes = null;
            Filled = 0;
        }
    }
}
